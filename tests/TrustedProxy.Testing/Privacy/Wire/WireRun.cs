using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TrustedProxy.Crypto;
using TrustedProxy.IO;
using TrustedProxy.ObliviousRetrieval;
using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.Storage.S3;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Testing.Privacy.Wire;

/// <summary>
/// Which deliberately broken proxy a run plays (see <see cref="KindAwareStore"/> and its subclasses);
/// <see cref="None"/> is the production code as it is. Leaks on different observables combine in one run.
/// </summary>
[Flags]
public enum WireControl
{
    None = 0,
    PlaintextOnReal = 1,
    RerandomisedDummies = 2,
    HeadBeforeRealOnly = 4,
    LongerReal = 8,
    ExtraHeaderOnReal = 16,
    RealNeverDeleted = 32,

    /// <summary>
    /// Not a leak but a repair: every body is read once into memory before the SDK sees it, so its
    /// hashing pass and its sending pass see the same bytes (what a deterministic cover stream does).
    /// Lets the survival control measure deletes alone, whatever the cover stream does.
    /// </summary>
    StableBodies = 64,

    /// <summary>Every leak of a single write at once: each touches its own observable (bytes, hash, sequence and gap, size, headers).</summary>
    WireLeaks = PlaintextOnReal | RerandomisedDummies | HeadBeforeRealOnly | LongerReal | ExtraHeaderOnReal,
}

/// <summary>Read-side controls (see <see cref="WantedReadLeak"/>): the proxy reads a group differently when it serves a request.</summary>
[Flags]
public enum WireReadControl
{
    None = 0,

    /// <summary>A HEAD before every member of a group read that serves a request.</summary>
    HeadBeforeWanted = 1,

    /// <summary>The wanted member read through a client that adds a header.</summary>
    ExtraHeaderOnWanted = 2,
}

/// <summary>One slot of the group-read loop: whether it served a request (ground truth, from the reader's own counter) and the tap's requests it made, [<see cref="From"/>, <see cref="To"/>) by arrival.</summary>
public sealed record ReadSlot(bool Wanted, long From, long To);

/// <summary>How a wire run is sized. The defaults give about 2,700 writes, 40 % real and 60 % cover, in 25–40 s of wall time.</summary>
public sealed record WireRunOptions
{
    public static readonly TimeSpan DefaultDuration = TimeSpan.FromMinutes(30);

    /// <summary>The cache's options: the production defaults except where only the scale changes (see <see cref="ScaledDefaults"/>).</summary>
    public UploadCacheOptions Cache { get; init; } = ScaledDefaults(DefaultDuration);

    /// <summary>Virtual time the run lasts from the first upload.</summary>
    public TimeSpan Duration { get; init; } = DefaultDuration;

    /// <summary>Record sizes are the workload's divided by this (CT and MR slices become one 4 KiB block, CR images one or two).</summary>
    public int SizeDivisor { get; init; } = 1280;

    public WireControl Control { get; init; } = WireControl.None;

    /// <summary>After the writes: this many records fetched through the production <see cref="GroupReader"/> (constant-rate group reads, cover reads in the other slots); 0: no read phase.</summary>
    public int WantedReads { get; init; }

    public WireReadControl ReadControl { get; init; } = WireReadControl.None;

    public int Seed { get; init; } = 1;

    /// <summary>
    /// The production defaults with what only sets the scale changed, so that a run of virtual
    /// minutes holds a few thousand writes: 4 KiB blocks, 1.5 writes/s, a pool of 300 (a 200 s mean
    /// hold), and a cover lifetime, if the defaults have one, compressed to a twelfth of the run so
    /// that the log spans several lifetimes (what survives depends on how lifetimes differ by kind,
    /// not on their scale).
    /// </summary>
    public static UploadCacheOptions ScaledDefaults(TimeSpan duration)
    {
        var defaults = new UploadCacheOptions();
        return defaults with
        {
            BlockSizeBytes = 4096,
            SlotsPerSecond = 1.5,
            PoolThreshold = 300,
            MeanDummyLifetimeSeconds = defaults.MeanDummyLifetimeSeconds > 0 ? CompressedLifetime(duration) : 0,
        };
    }

    /// <summary>A twelfth of the run: a log of twelve mean lifetimes.</summary>
    public static double CompressedLifetime(TimeSpan duration) => duration.TotalSeconds / 12;

    /// <summary>Bursts of studies at a rate that fills about half the slots.</summary>
    public WorkloadOptions Workload(TimeSpan duration) => new()
    {
        Hospitals = 4,
        StudiesPerHospitalPerDay = 900,
        DiurnalAmplitude = 0,
        CtShare = 0.03,
        MrShare = 0.07,
        BacklogShare = 0,
        Duration = duration,
        Seed = Seed,
    };
}

/// <summary>What a wire run leaves: every request the cloud received, the truth to score with, and the workload.</summary>
public sealed class WireRunResult(IReadOnlyList<TappedRequest> requests, IReadOnlyDictionary<string, string> kinds, IReadOnlyDictionary<string, ObjectTruth> realObjects, HospitalWorkload workload, IReadOnlyList<UploadedRecord> uploads, int engineErrors, TimeSpan wallTime, IReadOnlyList<ReadSlot> readSlots)
{
    /// <summary>The read phase's slots in order (empty without one). Which were wanted is ground truth.</summary>
    public IReadOnlyList<ReadSlot> ReadSlots => readSlots;

    public IReadOnlyList<TappedRequest> Requests => requests;

    /// <summary>Ground truth: the kind of each object name. For scoring only.</summary>
    public IReadOnlyDictionary<string, string> Kinds => kinds;

    /// <summary>Ground truth of the real objects written (record, study, arrival), for the log attacks. For scoring only.</summary>
    public IReadOnlyDictionary<string, ObjectTruth> RealObjects => realObjects;

    public HospitalWorkload Workload => workload;

    /// <summary>The records uploaded during the run.</summary>
    public IReadOnlyList<UploadedRecord> Uploads => uploads;

    /// <summary>Steps of the release loop that failed (the front refused a write, say).</summary>
    public int EngineErrors => engineErrors;

    public TimeSpan WallTime => wallTime;

    /// <summary>The summary log the cloud could also keep (puts it accepted, deletes), for the log-level attacks.</summary>
    public IReadOnlyList<CloudObservation> Observations() =>
        requests.Where(r => r.Key is not null && r.Status is >= 200 and < 300 && r.Method is "PUT" or "DELETE")
            .Select(r => new CloudObservation(r.At, r.Method == "PUT" ? "put" : "delete", r.Key!, r.BodyLength))
            .ToList();
}

/// <summary>
/// Runs the production upload cache (<see cref="UploadCacheEngine"/>, <see cref="BlockWriter"/>,
/// the SQLite index, the staging area) on a <see cref="FakeTimeProvider"/> against the real
/// <see cref="S3ObjectStore"/> (AWS SDK, as the server configures it) talking through the
/// attacker's <see cref="WireTap"/> to the verifying front (<see cref="Storage.VerifyingS3Front"/>)
/// before a real s3rver. Records arrive as the seeded workload says; each is encrypted into the staging area with
/// the real envelope format and admitted the way <see cref="RecordUploader"/> admits it; the loop moves
/// the clock to the engine's next event (or the next arrival) and steps the engine. Nothing sleeps.
/// </summary>
public static class WireRun
{
    public const string Bucket = "wire";

    public static async Task<WireRunResult> RunAsync(WireRunOptions options, CancellationToken cancellationToken = default)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        var workload = HospitalWorkload.Generate(options.Workload(options.Duration));
        var time = new FakeTimeProvider(workload.Start);

        // The index and the cache on tmpfs where there is one: every commit is fsync'd (synchronous=FULL).
        var root = Directory.Exists("/dev/shm") ? Path.Combine("/dev/shm", "tproxy-wire-" + Guid.NewGuid().ToString("N")[..12]) : Path.Combine(Path.GetTempPath(), "tproxy-wire-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        await using var front = await Storage.VerifyingS3Front.StartAsync();
        await using var tap = await WireTap.StartAsync(front.ServiceUrl, time);
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        try
        {
            var index = new RecordIndex(Path.Combine(root, "index.db"));
            var truth = WireTruth.Install(index);
            var blocks = new BlockIndex(index);
            var staging = new StagingArea(Path.Combine(root, "staging"));
            using var client = Client(tap.ServiceUrl, null);
            await client.PutBucketAsync(new PutBucketRequest { BucketName = Bucket }, cancellationToken);
            using var realClient = Client(tap.ServiceUrl, ExtraHeaderOnReal.Header);
            var store = Control(options.Control, new S3ObjectStore(client, Bucket), new S3ObjectStore(realClient, Bucket), truth);
            var padding = PaddingSchemes.Create(options.Cache);
            var random = new Random(options.Seed);
            using var mask = new ObjectMask(RandomNumberGenerator.GetBytes(32));
            using var engine = new UploadCacheEngine(
                blocks, new BlockWriter(store, staging, blocks, mask), store, staging, padding, Options.Create(options.Cache), Options.Create(new ObliviousRetrievalOptions()),
                time, random, services.GetRequiredService<IMeterFactory>(), NullLogger<UploadCacheEngine>.Instance);

            var end = workload.Start + options.Duration;
            var uploads = workload.Records.Where(r => r.ArrivedAt < end).OrderBy(r => r.ArrivedAt).ThenBy(r => r.Id).ToList();
            var names = new Dictionary<string, (UploadedRecord Record, int Block)>();
            var next = 0;
            var errors = 0;
            var stepsAtThisInstant = 0;
            var lastStep = DateTimeOffset.MinValue;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var arrival = next < uploads.Count ? uploads[next].ArrivedAt : DateTimeOffset.MaxValue;
                var due = engine.NextEventAt();
                if (arrival <= due && arrival < end)
                {
                    MoveTo(time, arrival);
                    foreach (var (name, block) in await AdmitAsync(engine, index, staging, padding, uploads[next], options.SizeDivisor, time.GetUtcNow()))
                    {
                        names[name] = (uploads[next], block);
                    }

                    next++;
                    continue;
                }

                if (due >= end)
                {
                    break;
                }

                MoveTo(time, due);
                stepsAtThisInstant = due == lastStep ? stepsAtThisInstant + 1 : 0;
                lastStep = due;
                if (stepsAtThisInstant > 1000)
                {
                    throw new InvalidOperationException($"the engine does not advance past {due:O}");
                }

                try
                {
                    await engine.StepAsync(cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // What RunAsync does (log, go on) without its backoff: a refused write is what the test looks for.
                    errors++;
                }
            }

            var slots = options.WantedReads > 0
                ? await ReadPhaseAsync(options, tap, index, blocks, mask, new S3ObjectStore(client, Bucket), new S3ObjectStore(realClient, Bucket), services.GetRequiredService<IMeterFactory>(), time.GetUtcNow(), cancellationToken)
                : [];
            var requests = tap.Requests;
            var written = requests.Where(r => r.Method == "PUT" && r.Key is not null && r.Status is >= 200 and < 300).GroupBy(r => r.Key!).ToDictionary(g => g.Key, g => g.First().At);
            var realObjects = names.Where(n => written.ContainsKey(n.Key)).ToDictionary(
                n => n.Key,
                n => new ObjectTruth(n.Value.Record.Id, n.Value.Block, n.Value.Record.StudyId, n.Value.Record.PatientId, n.Value.Record.HospitalId, n.Value.Record.ArrivedAt, written[n.Key]));
            return new WireRunResult(requests, truth.All(), realObjects, workload, uploads, errors, started.Elapsed, slots);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>
    /// Fetches stored records through the production <see cref="GroupReader"/> on its constant-rate
    /// loop (virtual time that jumps to each slot): a request is enqueued once at least one cover slot
    /// has passed since the last, so wanted and cover slots alternate irregularly. The reader's own
    /// counter (kind wanted or cover, added as each slot ends) labels the slots; the tap's arrival
    /// count at that instant is the boundary, since the loop reads one slot after the other.
    /// </summary>
    private static async Task<IReadOnlyList<ReadSlot>> ReadPhaseAsync(
        WireRunOptions options, WireTap tap, RecordIndex index, BlockIndex blocks, ObjectMask mask, IObjectStore store, IObjectStore realPath, IMeterFactory meters, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var readTime = new JumpingTimeProvider(now);
        tap.Time = readTime;
        List<string> handles;
        using (var connection = index.Open())
        {
            handles = (await Dapper.SqlMapper.QueryAsync<string>(connection, "SELECT handle FROM records WHERE state = 'Stored' ORDER BY created_at")).ToList();
        }

        var wanted = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();
        var wantedGroups = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();
        var readStore = options.ReadControl == WireReadControl.None
            ? store
            : new WantedReadLeak(
                store, realPath, n => wantedGroups.ContainsKey(n.ToString()), n => wanted.ContainsKey(n.ToString()),
                options.ReadControl.HasFlag(WireReadControl.HeadBeforeWanted), options.ReadControl.HasFlag(WireReadControl.ExtraHeaderOnWanted));
        var slots = new List<ReadSlot>();
        var coverSinceWanted = 0;
        var slotEnded = new SemaphoreSlim(0);
        var from = tap.Arrived;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == meters && instrument.Name == "trustedproxy.retrieval.group_reads")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            var isWanted = false;
            foreach (var tag in tags)
            {
                isWanted |= tag.Key == "kind" && Equals(tag.Value, "wanted");
            }

            lock (slots)
            {
                var to = tap.Arrived;
                slots.Add(new ReadSlot(isWanted, from, to));
                from = to;
                coverSinceWanted = isWanted ? 0 : coverSinceWanted + 1;
            }

            slotEnded.Release();
        });
        listener.Start();

        var random = new Random(options.Seed + 1);
        using var reader = new GroupReader(readStore, blocks, mask, Options.Create(new ObliviousRetrievalOptions()), readTime, new Random(options.Seed + 2), meters, NullLogger<GroupReader>.Instance);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var loop = reader.RunAsync(stop.Token);
        for (var i = 0; i < options.WantedReads && handles.Count > 0; i++)
        {
            // Wait for a cover slot or more (1 to 3, drawn) since the last request was served.
            var gap = random.Next(1, 4);
            while (true)
            {
                lock (slots)
                {
                    if (coverSinceWanted >= gap)
                    {
                        break;
                    }
                }

                await slotEnded.WaitAsync(cancellationToken);
            }

            var handle = handles[random.Next(handles.Count)];
            var own = await blocks.OfRecordAsync(handle);
            foreach (var block in own)
            {
                wanted[block.ObjectName.ToString()] = true;
            }

            foreach (var member in await blocks.GroupMembersAsync(own.Where(b => b.GroupId is not null).Select(b => b.GroupId!.Value).ToList()))
            {
                wantedGroups[member.ObjectName.ToString()] = true;
            }

            try
            {
                await reader.ReadAsync(new RecordEntry
            {
                Handle = handle,
                ObjectName = ObjectName.NewRandom(),
                WrappedKey = [],
                TransferSyntaxUid = "",
                PlaintextLength = 0,
                StoredLength = 0,
                ContentSha256 = [],
                OriginOrganisation = "",
                State = RecordState.Stored,
                CreatedAt = now,
                }, Stream.Null, cancellationToken);
            }
            catch (EnvelopeIntegrityException)
            {
                // A write-side control changed the stored size of real objects; the slot was read all the same.
            }

            wanted.Clear();
            wantedGroups.Clear();
        }

        await stop.CancelAsync();
        await loop;
        lock (slots)
        {
            return slots.ToList();
        }
    }

    private static void MoveTo(FakeTimeProvider time, DateTimeOffset at)
    {
        if (at > time.GetUtcNow())
        {
            time.SetUtcNow(at);
        }
    }

    /// <summary>What <see cref="RecordUploader"/> does once a file is read: envelope-encrypt into the staging area, pad, persist, index the record and its blocks in one transaction, admit the blocks.</summary>
    private static async Task<IEnumerable<(string Name, int Block)>> AdmitAsync(UploadCacheEngine engine, RecordIndex index, StagingArea staging, IPaddingScheme padding, UploadedRecord record, int sizeDivisor, DateTimeOffset now)
    {
        var handle = RecordHandle.New();
        var envelopeIndex = ObjectName.NewRandom();
        using var dataKey = DataKey.CreateRandom();
        var plaintext = new byte[Math.Max(1, record.PlaintextLength / sizeDivisor)];
        long plaintextLength;
        BlockLayout layout;
        await using (var staged = staging.Create(handle))
        {
            await using (var envelope = new EnvelopeEncryptingStream(staged, dataKey, envelopeIndex.ToBytes(), leaveOpen: true))
            {
                await envelope.WriteAsync(plaintext);
                await envelope.CompleteAsync(CancellationToken.None);
                plaintextLength = envelope.PlaintextLength;
            }

            layout = padding.Layout(staged.Length);
            await using (var fill = new RandomBytesStream(layout.StoredLength - staged.Length))
            {
                await fill.CopyToAsync(staged);
            }

            staging.Persist(staged);
        }

        var entry = new RecordEntry
        {
            Handle = handle,
            ObjectName = envelopeIndex,
            WrappedKey = RandomNumberGenerator.GetBytes(40),
            TransferSyntaxUid = "1.2.840.10008.1.2.1",
            PlaintextLength = plaintextLength,
            StoredLength = layout.StoredLength,
            ContentSha256 = SHA256.HashData(plaintext),
            OriginOrganisation = $"hospital-{record.HospitalId}",
            State = RecordState.Cached,
            CreatedAt = now,
        };
        var newBlocks = Enumerable.Range(0, layout.Count).Select(i => CacheBlock.Waiting(handle, i, layout.Length, now, engine.DrawDeadline(now))).ToList();
        var ids = await index.InsertAsync(entry, newBlocks);
        newBlocks = newBlocks.Select((b, i) => b with { Id = ids[i] }).ToList();
        engine.Admit(newBlocks);
        return newBlocks.Select(b => (b.ObjectName.ToString(), b.BlockIndex));
    }

    /// <summary>The broken proxies, innermost first: the header control swaps the client, the others wrap the store.</summary>
    private static IObjectStore Control(WireControl control, IObjectStore store, IObjectStore realPath, WireTruth truth)
    {
        if (control.HasFlag(WireControl.ExtraHeaderOnReal))
        {
            store = new ExtraHeaderOnReal(store, realPath, truth);
        }

        if (control.HasFlag(WireControl.StableBodies))
        {
            store = new StableBodies(store, truth);
        }

        if (control.HasFlag(WireControl.LongerReal))
        {
            store = new LongerReal(store, truth);
        }

        if (control.HasFlag(WireControl.PlaintextOnReal))
        {
            store = new PlaintextOnReal(store, truth);
        }

        if (control.HasFlag(WireControl.RerandomisedDummies))
        {
            store = new RerandomisedDummies(store, truth);
        }

        if (control.HasFlag(WireControl.HeadBeforeRealOnly))
        {
            store = new HeadBeforeRealOnly(store, truth);
        }

        if (control.HasFlag(WireControl.RealNeverDeleted))
        {
            store = new RealNeverDeleted(store, truth);
        }

        return store;
    }

    /// <summary>An SDK client as the server's S3 provider makes one, aimed at the front; no retries (a retry would sleep), s3rver's credentials.</summary>
    private static AmazonS3Client Client(string serviceUrl, string? extraHeader)
    {
        var config = new AmazonS3Config
        {
            ServiceURL = serviceUrl,
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
            MaxErrorRetry = 0,
        };
        if (extraHeader is not null)
        {
            config.HttpClientFactory = new HeaderAddingClientFactory(extraHeader);
        }

        return new AmazonS3Client(new BasicAWSCredentials("S3RVER", "S3RVER"), config);
    }

    /// <summary>The header control's second client: every request carries one more header.</summary>
    private sealed class HeaderAddingClientFactory(string header) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig) =>
            new(new AddHeader(header) { InnerHandler = new SocketsHttpHandler { UseProxy = false } });

        public override bool UseSDKHttpClientCaching(IClientConfig clientConfig) => false;

        public override bool DisposeHttpClientsAfterUse(IClientConfig clientConfig) => false;

        public override string GetConfigUniqueString(IClientConfig clientConfig) => "wire-header-control";
    }

    private sealed class AddHeader(string header) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.TryAddWithoutValidation(header, "1");
            return base.SendAsync(request, cancellationToken);
        }
    }
}
