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

/// <summary>Read-side controls: each breaks the production reader on one observable, so that its classifier is shown to work.</summary>
[Flags]
public enum WireReadControl
{
    None = 0,

    /// <summary>A HEAD before every member of a wanted group (<see cref="WantedReadLeak"/>).</summary>
    HeadBeforeWanted = 1,

    /// <summary>The wanted object read through a client that adds a header, as forwarded trace context would (<see cref="WantedReadLeak"/>).</summary>
    ExtraHeaderOnWanted = 2,

    /// <summary>Epochs at Poisson times, a request served at the first after it: the epoch that starts a request's stream follows a longer gap.</summary>
    PoissonEpochs = 4,

    /// <summary>Cover streams re-read the groups of the last wanted stream.</summary>
    ReplayRecentWanted = 8,

    /// <summary>A cover model that never learns: ages uniform over the store, every cover stream of the smallest size, against recency-biased requests of all sizes.</summary>
    UniformCover = 16,
}

/// <summary>One object read of the read phase, as the reader planned it (ground truth): the epoch's time, the object, whether a request waited for it, its stream (negative: cover).</summary>
public sealed record ReadTruth(DateTimeOffset At, string Key, bool Wanted, long Stream);

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

    /// <summary>After the writes: this many requests (a record, or a whole study) served through the production <see cref="GroupReader"/> on its epoch schedule; 0: no read phase.</summary>
    public int WantedReads { get; init; }

    /// <summary>Mean virtual time between requests (Poisson arrivals).</summary>
    public TimeSpan MeanRequestGap { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// The read options: the production defaults at the write side's scale (4 KiB blocks): four
    /// groups an epoch, so that streams last several epochs, and no idle floor (at this block size
    /// the production floor would be hundreds of streams a day). The cover model is the one the
    /// site would have learned at this load (learned first, on another draw of the same requests).
    /// </summary>
    public ObliviousRetrievalOptions Read { get; init; } = new ObliviousRetrievalOptions() with { GroupsPerEpoch = 4, IdleFloorGigabytesPerDay = 0 };

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
public sealed class WireRunResult(IReadOnlyList<TappedRequest> requests, IReadOnlyDictionary<string, string> kinds, IReadOnlyDictionary<string, ObjectTruth> realObjects, HospitalWorkload workload, IReadOnlyList<UploadedRecord> uploads, int engineErrors, TimeSpan wallTime, IReadOnlyList<ReadTruth> readTruth)
{
    /// <summary>The read phase's object reads as planned, in order (empty without one). Ground truth, for scoring only.</summary>
    public IReadOnlyList<ReadTruth> ReadTruth => readTruth;

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
                ? await ReadPhaseAsync(options, tap, time, index, blocks, mask, names, new S3ObjectStore(client, Bucket), new S3ObjectStore(realClient, Bucket), services.GetRequiredService<IMeterFactory>(), cancellationToken)
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
    /// Serves requests through the production <see cref="GroupReader"/>, driving its epochs on the
    /// fake clock: requests arrive as a Poisson process; each wants one record or a whole study
    /// (announced with <see cref="GroupReader.PrefetchAsync"/> as WADO-RS does), a third of them
    /// again something asked before, the rest half among the newest fifth of the records and half
    /// among all. The clock moves to the next arrival or the next epoch, whichever is first, until
    /// every request is served and every stream read. The reader's plan is the ground truth.
    /// </summary>
    private static async Task<IReadOnlyList<ReadTruth>> ReadPhaseAsync(
        WireRunOptions options, WireTap tap, FakeTimeProvider time, RecordIndex index, BlockIndex blocks, ObjectMask mask,
        IReadOnlyDictionary<string, (UploadedRecord Record, int Block)> names, IObjectStore store, IObjectStore realPath, IMeterFactory meters, CancellationToken cancellationToken)
    {
        // Every record in the cloud, oldest first, with its study and its groups.
        var targets = new List<(RecordEntry Entry, int Study, long[] Groups)>();
        using (var connection = index.Open())
        {
            foreach (var handle in await Dapper.SqlMapper.QueryAsync<string>(connection, "SELECT handle FROM records WHERE state = 'Stored' ORDER BY created_at"))
            {
                var own = await blocks.OfRecordAsync(handle);
                if (own.Count > 0 && own.All(b => b.State == BlockState.Released && b.GroupId is not null) && names.TryGetValue(own[0].ObjectName.ToString(), out var truth))
                {
                    targets.Add((Entry(handle, time.GetUtcNow()), truth.Record.StudyId, own.Select(b => b.GroupId!.Value).ToArray()));
                }
            }
        }

        var (last, _) = await blocks.LastGroupAsync();
        var cover = LearnedCover(options, targets, last, time.GetUtcNow());

        // The objects read for a request in the epoch under way (the leaky controls mark these).
        var wanted = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();
        var readStore = options.ReadControl.HasFlag(WireReadControl.HeadBeforeWanted) || options.ReadControl.HasFlag(WireReadControl.ExtraHeaderOnWanted)
            ? new WantedReadLeak(
                store, realPath, n => wanted.ContainsKey(n.ToString()), n => wanted.ContainsKey(n.ToString()),
                options.ReadControl.HasFlag(WireReadControl.HeadBeforeWanted), options.ReadControl.HasFlag(WireReadControl.ExtraHeaderOnWanted))
            : store;
        tap.Time = time;
        using var reader = new GroupReader(
            readStore, blocks, mask, Options.Create(options.Read), Options.Create(options.Cache), time, new Random(options.Seed + 2), meters, NullLogger<GroupReader>.Instance,
            Control(options.ReadControl), cover);
        var truthLog = new List<ReadTruth>();
        reader.EpochPlanned = (at, plan) =>
        {
            wanted.Clear();
            foreach (var p in plan.Where(p => p.Wanted))
            {
                wanted[p.Name.ToString()] = true;
            }

            lock (truthLog)
            {
                truthLog.AddRange(plan.Select(p => new ReadTruth(at, p.Name.ToString(), p.Wanted, p.Stream)));
            }
        };

        var requests = Requests(options, targets, time.GetUtcNow(), options.Seed + 1);
        var serving = new List<Task>();
        var next = 0;
        while (next < requests.Count || reader.Streams > 0 || serving.Any(t => !t.IsCompleted))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (next < requests.Count && requests[next].At <= reader.NextEpochAt)
            {
                MoveTo(time, requests[next].At);
                var entries = requests[next++].Entries;
                var prefetch = await reader.PrefetchAsync(entries, cancellationToken);
                serving.Add(ServeAsync(reader, entries, prefetch, cancellationToken));
                continue;
            }

            MoveTo(time, reader.NextEpochAt);
            await reader.ReadEpochAsync(cancellationToken);
            serving.RemoveAll(t => t.IsCompleted && !t.IsFaulted);
        }

        await Task.WhenAll(serving);
        lock (truthLog)
        {
            return truthLog.ToList();
        }
    }

    private static async Task ServeAsync(GroupReader reader, IReadOnlyList<RecordEntry> entries, IDisposable prefetch, CancellationToken cancellationToken)
    {
        using (prefetch)
        {
            foreach (var entry in entries)
            {
                try
                {
                    await reader.ReadAsync(entry, Stream.Null, cancellationToken);
                }
                catch (EnvelopeIntegrityException)
                {
                    // A write-side control changed the stored size of real objects; the blocks were read all the same.
                }
            }
        }
    }

    private static ReadScheduleControl Control(WireReadControl control) =>
        control.HasFlag(WireReadControl.PoissonEpochs) ? ReadScheduleControl.PoissonEpochs
        : control.HasFlag(WireReadControl.ReplayRecentWanted) ? ReadScheduleControl.ReplayRecentWanted
        : ReadScheduleControl.None;

    /// <summary>
    /// The requests of a read phase: arrival, and the records wanted (one, or up to 64 of a study,
    /// as a series would be). A request for records read earlier in the run is served from the
    /// proxy's cache (relocation put them there, for a day) and makes no cloud read, so it is left out.
    /// </summary>
    private static List<(DateTimeOffset At, IReadOnlyList<RecordEntry> Entries)> Requests(WireRunOptions options, IReadOnlyList<(RecordEntry Entry, int Study, long[] Groups)> targets, DateTimeOffset start, int seed)
    {
        var random = new Random(seed);
        var asked = new List<IReadOnlyList<RecordEntry>>();
        var read = new HashSet<string>();
        var requests = new List<(DateTimeOffset, IReadOnlyList<RecordEntry>)>();
        var at = start;
        for (var i = 0; i < options.WantedReads && targets.Count > 0; i++)
        {
            at += TimeSpan.FromTicks((long)(-Math.Log(1 - random.NextDouble()) * options.MeanRequestGap.Ticks));
            IReadOnlyList<RecordEntry> entries;
            if (asked.Count > 0 && random.NextDouble() < 1.0 / 3)
            {
                entries = asked[random.Next(asked.Count)];
            }
            else
            {
                var pick = random.NextDouble() < 0.5 ? targets[targets.Count - 1 - random.Next(Math.Max(1, targets.Count / 5))] : targets[random.Next(targets.Count)];
                entries = random.NextDouble() < 0.5 ? [pick.Entry] : targets.Where(t => t.Study == pick.Study).Take(64).Select(t => t.Entry).ToList();
                asked.Add(entries);
            }

            var fromCloud = entries.Where(e => read.Add(e.Handle)).ToList();
            if (fromCloud.Count > 0)
            {
                requests.Add((at, fromCloud));
            }
        }

        return requests;
    }

    /// <summary>
    /// The cover model a site has after weeks of these requests: the same kind of requests (another
    /// draw) run through a schedule whose model forgets within the hour, then its counts as the
    /// snapshot cover draws from, never renewed during the run. The control that never learns
    /// gets uniform ages over the store and streams of the smallest size instead.
    /// </summary>
    private static CoverModel LearnedCover(WireRunOptions options, IReadOnlyList<(RecordEntry Entry, int Study, long[] Groups)> targets, long lastGroup, DateTimeOffset now)
    {
        var settings = CoverModelSettings.From(options.Read with { CoverModelHalfLifeDays = 1.0 / 24, CoverModelSnapshotHours = 1e5 }, options.Cache.BlockSizeBytes);
        if (options.ReadControl.HasFlag(WireReadControl.UniformCover))
        {
            var bins = StreamShape.AgeBinOf(lastGroup);
            var uniform = Enumerable.Range(0, bins + 1).ToDictionary(b => new StreamShape(b, 0, StreamShape.SpreadBinOf(1)), b => Math.Pow(2, b / 4.0));
            var rate = options.WantedReads > 0 ? 1 / options.MeanRequestGap.TotalSeconds : 0;
            return new CoverModel(settings with { Prior = uniform, PriorStreamsPerSecond = rate, Learn = false }, now);
        }

        var learning = new CoverModel(settings, now);
        var schedule = new ReadSchedule(options.Read, learning, new Random(options.Seed + 3), now);
        var byHandle = targets.ToDictionary(t => t.Entry.Handle, t => t.Groups);
        var clock = now;
        foreach (var (at, entries) in Requests(options with { WantedReads = Math.Max(options.WantedReads, 1000) }, targets, now, options.Seed + 4))
        {
            while (schedule.NextEpochAt < at)
            {
                clock = schedule.NextEpochAt;
                schedule.TakeEpoch(clock, lastGroup);
            }

            schedule.Want(entries.SelectMany(e => byHandle[e.Handle]).ToList(), lastGroup);
        }

        var state = learning.State();
        return new CoverModel(settings, now, state.Settled(now));
    }

    private static RecordEntry Entry(string handle, DateTimeOffset now) => new()
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
    };

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
