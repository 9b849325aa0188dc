using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TrustedProxy.Backup;
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

    /// <summary>Requests read as they are, not padded to a size class: a one-record request is one group in one epoch.</summary>
    NoPadding = 32,
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

    /// <summary>Requests (a record, or a series of a study) served through the production <see cref="GroupReader"/> on its epoch schedule while the writes go on; 0: no reads.</summary>
    public int WantedReads { get; init; }

    /// <summary>When the first request may come, after the first upload (the store needs something in it).</summary>
    public TimeSpan ReadsFrom { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Share of requests for a series (up to 16 records of one study) rather than one record.</summary>
    public double SeriesShare { get; init; } = 0.5;

    /// <summary>Mean virtual time between requests (Poisson arrivals).</summary>
    public TimeSpan MeanRequestGap { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>
    /// The read options: the production defaults at the run's scale. Blocks of 4 KiB and minutes
    /// instead of days: four groups an epoch (streams last several epochs), the cover model's
    /// half-life ten minutes and its snapshot every two (the production day and week become minutes,
    /// so that it learns within the run), the declared load the run's own, and no idle floor (at this
    /// block size the production floor would be hundreds of streams a day).
    /// </summary>
    public ObliviousRetrievalOptions Read { get; init; } = new ObliviousRetrievalOptions() with
    {
        GroupsPerEpoch = 4,
        IdleFloorGigabytesPerDay = 0,
        CoverModelHalfLifeDays = 10.0 / 1440,
        CoverModelSnapshotHours = 2.0 / 60,
        DeclaredRetrievalsPerDay = 86_400 / 4.0,
        DeclaredRetrievalMegabytes = 16 * 4096 / 1e6,
    };

    public WireReadControl ReadControl { get; init; } = WireReadControl.None;

    /// <summary>
    /// The backup (issue 14): when set and enabled, a real <see cref="BackupShipper"/> over the run's
    /// data directory stages generations and increments and ships them in the dummy slots
    /// (<see cref="WireBackup"/>). Null: off, as in the defaults.
    /// </summary>
    public BackupOptions? Backup { get; init; }

    /// <summary>
    /// The backup at the run's scale: a generation due five virtual minutes after the last one's
    /// snapshot (three are staged in a half-hour run) and the increment check at its default, 5 s.
    /// Every increment carries the whole index (about 2 MiB by the end, 500 objects of 4 KiB: the
    /// index is not scaled down with the blocks) and each waiting upload's ciphertext once more, so
    /// the backup takes nearly every dummy slot of the run and falls behind: the hardest case for
    /// the wire question (almost every cover write is a backup object), not a measure of its lag.
    /// </summary>
    public static BackupOptions ScaledBackup => new() { Enabled = true, IntervalSeconds = 300, IncrementCheckSeconds = 5 };

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
public sealed class WireRunResult(
    IReadOnlyList<TappedRequest> requests, IReadOnlyDictionary<string, string> kinds, IReadOnlyDictionary<string, ObjectTruth> realObjects, HospitalWorkload workload, IReadOnlyList<UploadedRecord> uploads, int engineErrors, TimeSpan wallTime, IReadOnlyList<ReadTruth> readTruth,
    IReadOnlySet<string>? coverPayloads = null, WireBackupSummary? backup = null)
{
    /// <summary>Ground truth: the objects that took a dummy's slot and name (backup objects; of kind Dummy in <see cref="Kinds"/>). For scoring only.</summary>
    public IReadOnlySet<string> CoverPayloads => coverPayloads ?? new HashSet<string>();

    /// <summary>What the backup did (null: the backup was off).</summary>
    public WireBackupSummary? Backup => backup;

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
            // The data directory's layout as the server's (proxy.db, staging/), which the backup's snapshot reads.
            var index = new RecordIndex(Path.Combine(root, "proxy.db"));
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
            using var backup = options.Backup is { Enabled: true } backupOptions
                ? WireBackup.Start(root, backupOptions, options.Cache.BlockSizeBytes, time, services.GetRequiredService<IMeterFactory>())
                : null;
            using var engine = new UploadCacheEngine(
                blocks, new BlockWriter(store, staging, blocks, mask), store, staging, padding, Options.Create(options.Cache), Options.Create(new ObliviousRetrievalOptions()),
                time, random, services.GetRequiredService<IMeterFactory>(), NullLogger<UploadCacheEngine>.Instance, backup?.Shipper);

            var end = workload.Start + options.Duration;
            var uploads = workload.Records.Where(r => r.ArrivedAt < end).OrderBy(r => r.ArrivedAt).ThenBy(r => r.Id).ToList();
            var names = new Dictionary<string, (UploadedRecord Record, int Block)>();
            var reads = options.WantedReads > 0
                ? new ReadPhase(options, time, index, blocks, mask, names, new S3ObjectStore(client, Bucket), new S3ObjectStore(realClient, Bucket), services.GetRequiredService<IMeterFactory>(), workload.Start)
                : null;
            var next = 0;
            var errors = 0;
            var stepsAtThisInstant = 0;
            var lastStep = DateTimeOffset.MinValue;
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var arrival = next < uploads.Count ? uploads[next].ArrivedAt : DateTimeOffset.MaxValue;
                var due = engine.NextEventAt();
                var readDue = reads?.NextEventAt ?? DateTimeOffset.MaxValue;
                if (readDue < arrival && readDue < due && readDue < end)
                {
                    MoveTo(time, readDue);
                    await reads!.StepAsync(cancellationToken);
                    continue;
                }

                // The backup's checks come before an arrival or a slot at the same instant; they read
                // local files only, and the engine's schedule does not depend on when they run.
                var backupDue = backup?.NextCheckAt ?? DateTimeOffset.MaxValue;
                if (backupDue <= arrival && backupDue <= due && backupDue < end)
                {
                    MoveTo(time, backupDue);
                    await backup!.CheckAsync(cancellationToken);
                    continue;
                }

                if (arrival <= due && arrival < end)
                {
                    MoveTo(time, arrival);
                    foreach (var (name, block) in await AdmitAsync(engine, index, staging, padding, uploads[next], options.SizeDivisor, time.GetUtcNow()))
                    {
                        names[name] = (uploads[next], block);
                    }

                    backup?.Audit(uploads[next].Id.ToString(System.Globalization.CultureInfo.InvariantCulture));

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

            var slots = reads is null ? [] : await reads.StopAsync();
            var requests = tap.Requests;
            var written = requests.Where(r => r.Method == "PUT" && r.Key is not null && r.Status is >= 200 and < 300).GroupBy(r => r.Key!).ToDictionary(g => g.Key, g => g.First().At);
            var realObjects = names.Where(n => written.ContainsKey(n.Key)).ToDictionary(
                n => n.Key,
                n => new ObjectTruth(n.Value.Record.Id, n.Value.Block, n.Value.Record.StudyId, n.Value.Record.PatientId, n.Value.Record.HospitalId, n.Value.Record.ArrivedAt, written[n.Key]));
            return new WireRunResult(requests, truth.All(), realObjects, workload, uploads, errors, started.Elapsed, slots, truth.CoverPayloads(), backup?.Summary());
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(root, recursive: true);
            if (Directory.Exists(root + "-certs"))
            {
                Directory.Delete(root + "-certs", recursive: true);
            }
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

/// <summary>
/// The read side of a wire run: requests served through the production <see cref="GroupReader"/>,
/// whose epochs the run's loop drives on the fake clock while the writes go on. Requests arrive as a
/// Poisson process from <see cref="WireRunOptions.ReadsFrom"/>; each wants one record or a series
/// (up to 16 records of one study, announced with <see cref="GroupReader.PrefetchAsync"/> as WADO-RS
/// does), half among the newest fifth of the records in the cloud and half among all of them. A
/// record read once is served from the proxy's cache afterwards (relocation put it there, for a
/// day), so it is not asked of the cloud again. The reader's plan is the ground truth.
/// </summary>
internal sealed class ReadPhase
{
    private readonly WireRunOptions _options;
    private readonly FakeTimeProvider _time;
    private readonly RecordIndex _index;
    private readonly IReadOnlyDictionary<string, (UploadedRecord Record, int Block)> _names;
    private readonly GroupReader _reader;
    private readonly Random _random;
    private readonly List<ReadTruth> _truth = [];
    private readonly List<Task> _serving = [];
    private readonly HashSet<string> _read = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _wanted = new();
    private DateTimeOffset _nextRequest;

    public ReadPhase(
        WireRunOptions options, FakeTimeProvider time, RecordIndex index, BlockIndex blocks, ObjectMask mask,
        IReadOnlyDictionary<string, (UploadedRecord Record, int Block)> names, IObjectStore store, IObjectStore realPath, IMeterFactory meters, DateTimeOffset start)
    {
        _options = options;
        _index = index;
        _time = time;
        _names = names;
        _random = new Random(options.Seed + 1);
        _nextRequest = start + options.ReadsFrom;
        _requestsLeft = options.WantedReads;

        // The objects read for a request in the epoch under way (the leaky controls mark these).
        var readStore = options.ReadControl.HasFlag(WireReadControl.HeadBeforeWanted) || options.ReadControl.HasFlag(WireReadControl.ExtraHeaderOnWanted)
            ? new WantedReadLeak(
                store, realPath, n => _wanted.ContainsKey(n.ToString()), n => _wanted.ContainsKey(n.ToString()),
                options.ReadControl.HasFlag(WireReadControl.HeadBeforeWanted), options.ReadControl.HasFlag(WireReadControl.ExtraHeaderOnWanted))
            : store;
        var cover = options.ReadControl.HasFlag(WireReadControl.UniformCover) ? UniformCover(options, time.GetUtcNow()) : null;
        _reader = new GroupReader(
            readStore, blocks, mask, Options.Create(options.Read), Options.Create(options.Cache), time, new Random(options.Seed + 2), meters, NullLogger<GroupReader>.Instance,
            options.ReadControl.HasFlag(WireReadControl.PoissonEpochs) ? ReadScheduleControl.PoissonEpochs
            : options.ReadControl.HasFlag(WireReadControl.ReplayRecentWanted) ? ReadScheduleControl.ReplayRecentWanted
            : options.ReadControl.HasFlag(WireReadControl.NoPadding) ? ReadScheduleControl.NoPadding
            : ReadScheduleControl.None,
            cover);
        _reader.EpochPlanned = (at, plan) =>
        {
            _wanted.Clear();
            foreach (var p in plan.Where(p => p.Wanted))
            {
                _wanted[p.Name.ToString()] = true;
            }

            lock (_truth)
            {
                _truth.AddRange(plan.Select(p => new ReadTruth(at, p.Name.ToString(), p.Wanted, p.Stream)));
            }
        };
        NextRequest();
    }

    /// <summary>The next request's arrival or the reader's next epoch, whichever is first.</summary>
    public DateTimeOffset NextEventAt => _requestsLeft > 0 && _nextRequest < _reader.NextEpochAt ? _nextRequest : _reader.NextEpochAt;

    private int _requestsLeft;

    public async Task StepAsync(CancellationToken cancellationToken)
    {
        if (_requestsLeft > 0 && _nextRequest < _reader.NextEpochAt)
        {
            await RequestAsync();
            NextRequest();
            return;
        }

        await _reader.ReadEpochAsync(cancellationToken);
        _serving.RemoveAll(t => t.IsCompleted);
    }

    public async Task<IReadOnlyList<ReadTruth>> StopAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_serving);
        }
        catch (OperationCanceledException)
        {
            // Requests still waiting when the run ends.
        }

        _reader.Dispose();
        lock (_truth)
        {
            return _truth.ToList();
        }
    }

    private void NextRequest()
    {
        _nextRequest += TimeSpan.FromTicks((long)(-Math.Log(1 - _random.NextDouble()) * _options.MeanRequestGap.Ticks));
    }

    private async Task RequestAsync()
    {
        _requestsLeft--;
        var inCloud = await InCloudAsync();
        var candidates = inCloud.Where(h => !_read.Contains(h.Handle)).ToList();
        if (candidates.Count == 0)
        {
            return;
        }

        var pick = _random.NextDouble() < 0.5 ? candidates[candidates.Count - 1 - _random.Next(Math.Max(1, candidates.Count / 5))] : candidates[_random.Next(candidates.Count)];
        var study = StudyOf(pick.FirstObject);
        var chosen = _random.NextDouble() >= _options.SeriesShare || study is null
            ? [pick]
            : candidates.Where(c => StudyOf(c.FirstObject) == study).Take(16).ToList();
        var entries = chosen.Select(c => Entry(c.Handle, _time.GetUtcNow())).ToList();
        foreach (var c in chosen)
        {
            _read.Add(c.Handle);
        }

        var prefetch = await _reader.PrefetchAsync(entries, [], _stop.Token);
        _serving.Add(ServeAsync(entries, prefetch));
    }

    /// <summary>Records whose blocks are all in the cloud, oldest written first.</summary>
    private async Task<List<(string Handle, string FirstObject)>> InCloudAsync()
    {
        await using var connection = _index.Open();
        var rows = await Dapper.SqlMapper.QueryAsync<(string Handle, string FirstObject)>(
            connection,
            "SELECT handle, MIN(object_name) FROM blocks WHERE kind = 'Real' AND handle IS NOT NULL GROUP BY handle HAVING SUM(CASE WHEN state = 'Released' AND group_id IS NOT NULL THEN 0 ELSE 1 END) = 0 ORDER BY MAX(group_id)");
        return rows.ToList();
    }

    private int? StudyOf(string objectName) => _names.TryGetValue(objectName, out var truth) ? truth.Record.StudyId : null;

    private async Task ServeAsync(IReadOnlyList<RecordEntry> entries, IDisposable prefetch)
    {
        using (prefetch)
        {
            foreach (var entry in entries)
            {
                try
                {
                    await _reader.ReadAsync(entry, Stream.Null, _stop.Token);
                }
                catch (EnvelopeIntegrityException)
                {
                    // A write-side control changed the stored size of real objects; the blocks were read all the same.
                }
            }
        }
    }

    /// <summary>The control's cover model: it never learns; ages uniform over a store of the run's size, every stream of the smallest size, at the requests' rate.</summary>
    private static CoverModel UniformCover(WireRunOptions options, DateTimeOffset now)
    {
        var settings = CoverModelSettings.From(options.Read, options.Cache.BlockSizeBytes);
        var writes = (long)(options.Duration.TotalSeconds * options.Cache.SlotsPerSecond);
        var uniform = Enumerable.Range(0, StreamShape.AgeBinOf(writes) + 1).ToDictionary(b => new StreamShape(b, 0, StreamShape.SpreadBinOf(1)), b => Math.Pow(2, b / 4.0));
        return new CoverModel(settings with { Prior = uniform, PriorStreamsPerSecond = 1 / options.MeanRequestGap.TotalSeconds, Learn = false }, now);
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
}
