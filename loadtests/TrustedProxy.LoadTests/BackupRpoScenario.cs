using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using TrustedProxy.Backup;
using TrustedProxy.Crypto;
using TrustedProxy.Storage;
using TrustedProxy.Testing.Privacy;
using TrustedProxy.Testing.UploadCache;
using TrustedProxy.UploadCache;

namespace TrustedProxy.LoadTests;

/// <summary>
/// The backup's recovery point under load (issue 14), on virtual time: the production release loop
/// (<see cref="EngineRig"/>: real SQLite index, real cache files, a real store) with the default
/// upload-cache options, a real <see cref="BackupShipper"/> with the default backup options (on), the
/// documented workload (<see cref="HospitalWorkload"/>) arriving at its virtual times (at 3×, three
/// times the studies), an audit line per upload, and the shipper's staging calls every
/// IncrementCheckSeconds as BackupService makes them. For each upload: its admission (the 202) and
/// the first time the backup holds it (the commit of the first increment taken at or after it, or
/// the completion of a generation whose snapshot is at or after it).
/// <para>
/// What is scaled, and only to bound the run's disk and wall time: the block size
/// (<c>--block-kib</c>, 16 by default; each record gets the block COUNT it has at 128 KiB, so the
/// slot arithmetic of the real blocks is the workload's); the pool starts in its steady state (each
/// block of the workload's earlier records kept with probability e^(−age·μ/k), the constant-rate
/// schedule's residence below k) instead of hours of warm-up; the cloud keeps names only, not bytes
/// (nothing reads it here). Bytes are reported as 128 KiB objects.
/// </para>
/// </summary>
internal static class BackupRpoScenario
{
    private const int RealBlock = 128 * 1024;

    public static async Task<int> RunAsync(string[] args)
    {
        string? Value(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var hours = double.Parse(Value("--hours") ?? "10", CultureInfo.InvariantCulture);
        var loads = (Value("--load") ?? "1,3").Split(',').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToList();
        var seed = int.Parse(Value("--seed") ?? "1", CultureInfo.InvariantCulture);
        var blockKib = int.Parse(Value("--block-kib") ?? "16", CultureInfo.InvariantCulture);
        var startHour = double.Parse(Value("--start-hour") ?? "6", CultureInfo.InvariantCulture);
        var slots = Value("--slots") is { } rate ? double.Parse(rate, CultureInfo.InvariantCulture) : (double?)null;
        var root = Value("--dir") ?? (Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath());

        var cache = new UploadCacheOptions();
        var backup = new BackupOptions { Enabled = true };
        if (Value("--interval") is { } interval)
        {
            backup = backup with { IntervalSeconds = int.Parse(interval, CultureInfo.InvariantCulture) };
        }

        var options = cache with { BlockSizeBytes = blockKib * 1024, SlotsPerSecond = slots ?? cache.SlotsPerSecond, PoolThreshold = slots is { } s ? SlotRate.PoolThresholdFor(s) : cache.PoolThreshold };
        Console.WriteLine(F($"# backup recovery point: production release loop and BackupShipper on virtual time, seed {seed}"));
        Console.WriteLine();
        Console.WriteLine(F($"Upload cache: {(slots is null ? "defaults" : "defaults but μ and k")} ({options.Schedule}, {options.SlotsPerSecond} slots/s, k = {options.PoolThreshold}, max hold {options.MaxHoldSeconds} s, {options.Padding}), and the block size: {blockKib} KiB here, each record cut into the number of blocks it has at 128 KiB. Backup: {(backup.IntervalSeconds == new BackupOptions().IntervalSeconds ? "defaults" : "defaults but the interval")} (interval {backup.IntervalSeconds} s, increment check every {backup.IncrementCheckSeconds} s), on. Workload: HospitalWorkload (seed {seed}), the backup on from {startHour:0.#}:00 for {hours:0.#} h of virtual time, the pool started in its steady state; an audit line per upload."));
        Console.WriteLine();

        var results = new List<Result>();
        foreach (var load in loads)
        {
            var directory = Path.Combine(root, $"tproxy-backup-rpo-{Guid.NewGuid():N}");
            try
            {
                results.Add(await RunOneAsync(directory, options, backup, load, seed, startHour, hours));
            }
            finally
            {
                foreach (var tree in new[] { directory, directory + "-certs" }.Where(Directory.Exists))
                {
                    Directory.Delete(tree, recursive: true);
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine("| load | real blocks/s | uploads (measured: after the first generation) | first generation complete after | first held p50 / p99 / max | held for good p50 / p99 / max | held at the end | backup point went back | lag at the end (max) | dummy slots used by the backup | written/day as 128 KiB objects (generations + increments) | per generation (base + its increments) | wall |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            Console.WriteLine(r.Row());
        }

        Console.WriteLine();
        Console.WriteLine("| load | generations completed: objects, snapshot to complete | increments committed | objects per increment p50 / p99 | uploads' blocks per increment p50 / p99 | the rest per increment (index pages, audit tail, small files) p50 / p99 | increment objects staged, in all (at 128 KiB) | index at the end |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            Console.WriteLine(r.DetailRow());
        }

        foreach (var r in results.Where(r => r.Observer.StagingFailures > 0))
        {
            Console.WriteLine();
            Console.WriteLine(F($"At {r.Load}×, staging failed {r.Observer.StagingFailures} times (tried again at the next check, as BackupService does); the first: {r.Observer.LastFailure}"));
        }

        return 0;
    }

    private static async Task<Result> RunOneAsync(string directory, UploadCacheOptions options, BackupOptions backupOptions, double load, int seed, double startHour, double hours)
    {
        var wall = Stopwatch.StartNew();
        var workload = HospitalWorkload.Generate(new WorkloadOptions
        {
            StudiesPerHospitalPerDay = 60 * load,
            Duration = TimeSpan.FromHours(startHour + hours),
            Seed = seed,
        });
        var real = PaddingSchemes.Create(new UploadCacheOptions());
        int BlocksOf(UploadedRecord record) => real.Layout(record.CiphertextLength).Count;
        var start = workload.Start.AddHours(startHour);
        var end = start.AddHours(hours);
        var random = new Random(seed);

        Prepare(directory);
        var time = new FakeTimeProvider(start);
        using var keyRing = ProxyKeyRing.FromBytes(SHA256.HashData("backup rpo scenario"u8));
        using var keys = BackupKeys.From(keyRing);
        using var metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var shipper = new BackupShipper(
            Path.Combine(directory, "backup"),
            new BackupSnapshotTaker(directory, directory + "-certs", TimeSpan.FromSeconds(5)),
            new BackupGenerationWriter(new BackupObjectSealer(keys, options.BlockSizeBytes)),
            Microsoft.Extensions.Options.Options.Create(backupOptions),
            options.BlockSizeBytes,
            time,
            metrics.GetRequiredService<IMeterFactory>(),
            NullLogger<BackupShipper>.Instance)
        {
            NameOf = keys.NameOf,
        };
        var observer = new ShippingObserver(shipper, time);
        NamesOnlyStore? store = null;
        using var rig = await EngineRig.OpenAsync(directory, options, time, inner => store = new NamesOnlyStore(inner), seed: seed, cover: observer);
        var audit = Path.Combine(directory, "audit", "audit.log");

        // The pool in its steady state: below k, each waiting block leaves at rate μ/k, so a block
        // admitted `age` ago is still waiting with probability e^(−age·μ/k).
        var leaveRate = options.SlotsPerSecond / options.PoolThreshold;
        var prefilled = 0L;
        foreach (var record in workload.Records.Where(r => r.ArrivedAt < start))
        {
            var age = (start - record.ArrivedAt).TotalSeconds;
            var kept = Enumerable.Range(0, BlocksOf(record)).Count(_ => random.NextDouble() < Math.Exp(-age * leaveRate));
            if (kept > 0)
            {
                await rig.AdmitRecordAsync(kept);
                await AppendAuditAsync(audit, random);
                prefilled += kept;
            }
        }

        var records = workload.Records.Where(r => r.ArrivedAt >= start && r.ArrivedAt < end).ToList();
        var admitted = new List<DateTimeOffset>(records.Count);
        var sinceSnapshot = new List<(string Handle, int Blocks)>();
        long realBlocks = 0;
        var released0 = rig.Engine.Snapshot().ReleasedBlocks;
        var puts0 = store!.Puts;
        var next = 0;
        var check = start;
        var step = TimeSpan.FromSeconds(Math.Min(Math.Min(15, backupOptions.IntervalSeconds), backupOptions.IncrementCheckSeconds));
        var reported = start;
        while (true)
        {
            var arrival = next < records.Count ? records[next].ArrivedAt : DateTimeOffset.MaxValue;
            var at = arrival <= check ? arrival : check;
            if (at >= end)
            {
                break;
            }

            await rig.RunUntilAsync(at);
            if (arrival <= check)
            {
                var blocks = BlocksOf(records[next++]);
                var handle = (await rig.AdmitRecordAsync(blocks))[0].Handle!;
                await AppendAuditAsync(audit, random);
                admitted.Add(at);
                sinceSnapshot.Add((handle, blocks));
                realBlocks += blocks;
                continue;
            }

            try
            {
                if (await shipper.StageIfDueAsync(CancellationToken.None) is { } generation)
                {
                    observer.GenerationStaged(generation, at, rig.Engine.Snapshot().WaitingBlocks);
                }

                if (await shipper.StageIncrementIfDueAsync(CancellationToken.None) is { } increment)
                {
                    // The uploads it carries first: those since the chain's previous snapshot still waiting.
                    var generationOf = shipper.Status().NewestComplete!.Value;
                    var from = increment == 0 ? observer.GenerationSnapshots[generationOf] : observer.IncrementSnapshots[(generationOf, increment - 1)];
                    var carried = 0L;
                    for (var i = admitted.Count - 1; i >= 0 && admitted[i] > from; i--)
                    {
                        if (File.Exists(Path.Combine(directory, "staging", sinceSnapshot[i].Handle + ".tpx")))
                        {
                            carried += sinceSnapshot[i].Blocks;
                        }
                    }

                    observer.IncrementStaged(generationOf, increment, at, Path.Combine(directory, "backup"), options.BlockSizeBytes, carried);
                }
            }
            catch (Exception ex)
            {
                // As BackupService does: logged, tried again at the next check.
                observer.StagingFailures++;
                observer.LastFailure ??= F($"{at:HH:mm:ss}: {ex.GetType().Name}: {ex.Message}");
            }

            observer.MaxLagSeconds = Math.Max(observer.MaxLagSeconds, shipper.Status().LagSeconds);
            check += step;
            if (at - reported >= TimeSpan.FromHours(1))
            {
                reported = at;
                var s = shipper.Status();
                Console.Error.WriteLine(F($"  load {load}×, {at:HH:mm}: {admitted.Count} uploads, pool {rig.Engine.Snapshot().WaitingBlocks} blocks, newest complete {s.NewestComplete?.ToString(CultureInfo.InvariantCulture) ?? "none"}, last increment {s.LastIncrement?.ToString(CultureInfo.InvariantCulture) ?? "none"}, lag {s.LagSeconds:0} s, {s.ObjectsWaiting} objects waiting, shipping generation {s.Shipping?.ToString(CultureInfo.InvariantCulture) ?? "none"}; wall {wall.Elapsed.TotalSeconds:0} s"));
            }
        }

        await rig.RunUntilAsync(end);
        var status = shipper.Status();
        var firstComplete = observer.GenerationCompleted.Count == 0 ? end : observer.GenerationCompleted.Values.Min();
        Console.Error.WriteLine(F($"  load {load}×: {admitted.Count(a => a < firstComplete)} uploads before the first generation completed at {firstComplete:HH:mm:ss}, {admitted.Count(a => a >= firstComplete)} after"));
        var snapshot = rig.Engine.Snapshot();
        return new Result(
            load, options, hours, realBlocks / (hours * 3600), prefilled, admitted, observer, status,
            snapshot.ReleasedBlocks - released0, store.Puts - puts0, new FileInfo(Path.Combine(directory, "proxy.db")).Length, end, wall.Elapsed);
    }

    private static Task AppendAuditAsync(string audit, Random random)
    {
        // About the size of an upload's audit entry (JSON: time, actor, action, handle, hash chain).
        var filler = new string('x', 250 + random.Next(100));
        return File.AppendAllTextAsync(audit, $"{{\"action\":\"upload\",\"detail\":\"{filler}\"}}\n");
    }

    private static void Prepare(string directory)
    {
        Directory.CreateDirectory(Path.Combine(directory, "audit"));
        File.WriteAllText(Path.Combine(directory, "audit", "audit.log"), "{\"entry\":1}\n");
        File.WriteAllText(Path.Combine(directory, "audit", "audit.checkpoint"), new string('c', 600));

        // A certificates directory of about the real files' sizes (they travel whole in every increment).
        var certs = directory + "-certs";
        Directory.CreateDirectory(Path.Combine(certs, "ca"));
        File.WriteAllText(Path.Combine(certs, "ca", "ca.crt.pem"), new string('a', 1900));
        File.WriteAllText(Path.Combine(certs, "ca", "ca.key.pem"), new string('b', 3400));
        File.WriteAllText(Path.Combine(certs, "ca", "ca.key.secret"), new string('s', 64));
        File.WriteAllText(Path.Combine(certs, "ca", "ca.crl"), new string('r', 900));
        File.WriteAllText(Path.Combine(certs, "server.crt.pem"), new string('d', 1800));
        File.WriteAllText(Path.Combine(certs, "server.key.pem"), new string('e', 1700));
        using var registry = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(certs, "ca", "registry.db"), Pooling = false }.ToString());
        registry.Open();
        using var command = registry.CreateCommand();
        command.CommandText = "CREATE TABLE certificates (serial TEXT PRIMARY KEY, subject TEXT, role TEXT, not_after TEXT, revoked_at TEXT);"
            + string.Concat(Enumerable.Range(0, 20).Select(i => $"INSERT INTO certificates VALUES ('{i:x32}', 'CN=hospital-{i},O=Hospital {i}', 'producer', '2027-12-01T00:00:00Z', NULL);"));
        command.ExecuteNonQuery();
    }

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static string Duration(double seconds) =>
        seconds < 120 ? F($"{seconds:0} s") : seconds < 7200 ? F($"{seconds / 60:0.#} min") : F($"{seconds / 3600:0.#} h");

    /// <summary>
    /// Between the release loop and the shipper: records when each backup object went out and, after
    /// the shipper took note, when an increment was committed or a generation completed.
    /// </summary>
    private sealed class ShippingObserver(BackupShipper shipper, TimeProvider time) : ICoverPayloadSource
    {
        public Dictionary<long, DateTimeOffset> GenerationSnapshots { get; } = [];

        public Dictionary<long, DateTimeOffset> GenerationCompleted { get; } = [];

        public Dictionary<(long Generation, long Increment), DateTimeOffset> IncrementSnapshots { get; } = [];

        public Dictionary<(long Generation, long Increment), long> IncrementObjects { get; } = [];

        public Dictionary<(long Generation, long Increment), long> IncrementNewBlocks { get; } = [];

        public Dictionary<(long Generation, long Increment), DateTimeOffset> IncrementCommitted { get; } = [];

        public Dictionary<long, long> GenerationObjectsShipped { get; } = [];

        public Dictionary<long, long> IncrementObjectsShipped { get; } = [];

        public long Shipped { get; private set; }

        public long StagingFailures { get; set; }

        /// <summary>Every change of the backup point (what a recovery at that moment would restore up to), in time order.</summary>
        public List<(DateTimeOffset At, DateTimeOffset? Point)> Timeline { get; } = [];

        public double MaxLagSeconds { get; set; }

        public string? LastFailure { get; set; }

        public CoverPayload? Peek(long length) => shipper.Peek(length);

        public Dictionary<long, long> GenerationWaitingBlocks { get; } = [];

        public void GenerationStaged(long generation, DateTimeOffset at, long waitingBlocks)
        {
            GenerationSnapshots[generation] = at;
            GenerationWaitingBlocks[generation] = waitingBlocks;
        }

        public void IncrementStaged(long generation, long increment, DateTimeOffset at, string backupDirectory, int blockSize, long newBlocks)
        {
            IncrementSnapshots[(generation, increment)] = at;
            IncrementNewBlocks[(generation, increment)] = newBlocks;
            var file = new FileInfo(Path.Combine(backupDirectory, $"generation-{generation}.increment-{increment}.objects"));
            IncrementObjects[(generation, increment)] = file.Exists ? file.Length / blockSize : 0;
        }

        public RetiredObjects? PeekRetired(int max) => shipper.PeekRetired(max);

        public void RetirementScheduled(RetiredObjects retired) => shipper.RetirementScheduled(retired);

        void ICoverPayloadSource.Shipped(CoverPayload payload)
        {
            var before = shipper.Status();
            shipper.Shipped(payload);
            var after = shipper.Status();
            var now = time.GetUtcNow();
            Shipped++;
            if (after.BackupPoint != before.BackupPoint)
            {
                Timeline.Add((now, after.BackupPoint));
            }

            var token = payload.Token;
            var generation = (long)token.GetType().GetProperty("Generation")!.GetValue(token)!;
            var isIncrement = token.GetType().GetProperty("Increment") is not null;
            var counts = isIncrement ? IncrementObjectsShipped : GenerationObjectsShipped;
            counts[generation] = counts.GetValueOrDefault(generation) + 1;
            if (after.NewestComplete is { } complete && complete != before.NewestComplete)
            {
                GenerationCompleted[complete] = now;
            }

            if (after.LastIncrement is { } last && (last != before.LastIncrement || after.NewestComplete != before.NewestComplete))
            {
                IncrementCommitted[(after.NewestComplete!.Value, last)] = now;
            }
        }
    }

    /// <summary>The cloud as far as this run needs it: puts counted and names kept (put-if-absent), bytes dropped.</summary>
    private sealed class NamesOnlyStore(IObjectStore inner) : IObjectStore
    {
        private readonly HashSet<ObjectName> _names = [];

        public long Puts { get; private set; }

        public string Name => inner.Name;

        public async Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
        {
            Puts++;
            await content.CopyToAsync(Stream.Null, cancellationToken);
            return _names.Add(name) ? PutResult.Created : PutResult.AlreadyExists;
        }

        public Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken) => throw new NotSupportedException("nothing reads the cloud in this run");

        public Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken) => Task.FromResult(_names.Remove(name));

        public Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken) => Task.FromResult(_names.Contains(name));

        public IAsyncEnumerable<StoredObject> ListAsync(CancellationToken cancellationToken) => throw new NotSupportedException("nothing lists the cloud in this run");
    }

    private sealed record Result(
        double Load, UploadCacheOptions Options, double Hours, double RealBlocksPerSecond, long Prefilled, List<DateTimeOffset> Admitted, ShippingObserver Observer,
        BackupStatus Status, long RealSlots, long Slots, long IndexBytes, DateTimeOffset End, TimeSpan Wall)
    {
        private double Days => Hours / 24;

        private double BlockRatio => (double)RealBlock / Options.BlockSizeBytes;

        private DateTimeOffset? FirstComplete => Observer.GenerationCompleted.Count == 0 ? null : Observer.GenerationCompleted.Values.Min();

        // Each upload admitted after the first generation completed (before it there is no base): when
        // the backup first held it (the backup point reached its 202), and from when it held it for good
        // (a generation completing resets the backup point to its snapshot, which may be older).
        private (List<double> First, List<double> ForGood, int Uncovered, double OldestUncovered, int Regressions) RecoveryPoints()
        {
            var timeline = Observer.Timeline;
            var first = new List<double>();
            var forGood = new List<double>();
            var uncovered = 0;
            var oldest = 0.0;
            foreach (var at in Admitted.Where(a => FirstComplete is { } complete && a >= complete))
            {
                var held = timeline.FindIndex(t => t.Point >= at);
                if (held < 0)
                {
                    uncovered++;
                    oldest = Math.Max(oldest, (End - at).TotalSeconds);
                    continue;
                }

                first.Add((timeline[held].At - at).TotalSeconds);
                var last = timeline.FindLastIndex(t => !(t.Point >= at));
                if (last > held)
                {
                    if (last == timeline.Count - 1)
                    {
                        forGood.Add(double.PositiveInfinity);
                        continue;
                    }

                    held = last + 1;
                }

                forGood.Add((timeline[held].At - at).TotalSeconds);
            }

            var regressions = timeline.Zip(timeline.Skip(1)).Count(p => p.Second.Point < p.First.Point);
            first.Sort();
            forGood.Sort();
            return (first, forGood, uncovered, oldest, regressions);
        }

        private string Percentile(List<double> covered, int uncovered, double oldest, double p)
        {
            var total = covered.Count + uncovered;
            if (total == 0)
            {
                return "–";
            }

            var rank = Math.Clamp((int)Math.Ceiling(p / 100 * total) - 1, 0, total - 1);
            return rank >= covered.Count ? F($"not covered (> {Duration(oldest)} for the oldest)")
                : double.IsPositiveInfinity(covered[rank]) ? "not held at the end" : Duration(covered[rank]);
        }

        public string Row()
        {
            var (first, forGood, uncovered, oldest, regressions) = RecoveryPoints();
            var measured = first.Count + uncovered;
            var dummies = Slots - RealSlots;
            var generationObjects = Observer.GenerationObjectsShipped.Values.Sum();
            var incrementObjects = Observer.IncrementObjectsShipped.Values.Sum();
            var completed = Observer.GenerationCompleted.Keys.ToList();
            var perGeneration = completed.Count == 0 ? 0 : completed.Average(g => Observer.GenerationObjectsShipped.GetValueOrDefault(g) + Observer.IncrementObjectsShipped.GetValueOrDefault(g));
            var heldAtEnd = forGood.Count(double.IsFinite);
            string Max(List<double> values) => uncovered > 0 ? "not covered" : values.Count == 0 ? "–" : double.IsPositiveInfinity(values[^1]) ? "not held at the end" : Duration(values[^1]);
            return F($"| {Load}× | {RealBlocksPerSecond:0.00} | {Admitted.Count} ({measured}) | {(FirstComplete is { } done ? Duration((done - Observer.GenerationSnapshots[0]).TotalSeconds) : "never")} | {Percentile(first, uncovered, oldest, 50)} / {Percentile(first, uncovered, oldest, 99)} / {Max(first)} | {Percentile(forGood, uncovered, oldest, 50)} / {Percentile(forGood, uncovered, oldest, 99)} / {Max(forGood)} | {(measured == 0 ? "–" : F($"{100.0 * heldAtEnd / measured:0.#} %"))} | {regressions} | {Duration(Status.LagSeconds)} ({Duration(Observer.MaxLagSeconds)}) | {Observer.Shipped} of {dummies} ({100.0 * Observer.Shipped / Math.Max(1, dummies):0} %; {dummies / (Hours * 3600):0.00}/s) | {generationObjects * (double)RealBlock / Days / 1e9:0.0} + {incrementObjects * (double)RealBlock / Days / 1e9:0.0} GB | {perGeneration * RealBlock / 1e9:0.00} GB | {Wall.TotalSeconds:0} s |");
        }

        public string DetailRow()
        {
            var block = Options.BlockSizeBytes;
            var keys = Observer.IncrementObjects.Keys.ToList();

            // An increment's bytes that are not uploads' ciphertext (the index's changed pages, the audit
            // tail, the whole small files, the entry table): the same bytes at any block size.
            double Overhead((long, long) key) => Math.Max(0, (Observer.IncrementObjects[key] - 1) * (double)(block - 32) - Observer.IncrementNewBlocks[key] * (double)block);
            long At128((long, long) key) => (long)Math.Ceiling((Observer.IncrementNewBlocks[key] * (double)RealBlock + Overhead(key)) / (RealBlock - 32)) + 1;
            string P(IEnumerable<double> values, double p)
            {
                var sorted = values.Order().ToList();
                return sorted.Count == 0 ? "–" : F($"{sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Count) - 1, 0, sorted.Count - 1)]:0.#}");
            }

            var generations = Observer.GenerationCompleted.Keys.Order().Select(g =>
            {
                // (Not re-cut at 128 KiB: a generation carries whole cache files, more than the waiting blocks, and the run does not split its bytes.)
                var objects = Observer.GenerationObjectsShipped.GetValueOrDefault(g);
                return F($"{g}: {objects}, {Duration((Observer.GenerationCompleted[g] - Observer.GenerationSnapshots[g]).TotalSeconds)}");
            });
            return F($"| {Load}× | {string.Join("; ", generations)} | {Observer.IncrementCommitted.Count} (staged {Observer.IncrementSnapshots.Count}) | {P(keys.Select(k => (double)Observer.IncrementObjects[k]), 50)} / {P(keys.Select(k => (double)Observer.IncrementObjects[k]), 99)} of {block / 1024} KiB; {P(keys.Select(k => (double)At128(k)), 50)} / {P(keys.Select(k => (double)At128(k)), 99)} at 128 KiB | {P(keys.Select(k => (double)Observer.IncrementNewBlocks[k]), 50)} / {P(keys.Select(k => (double)Observer.IncrementNewBlocks[k]), 99)} | {P(keys.Select(k => Overhead(k) / 1024), 50)} KiB / {P(keys.Select(k => Overhead(k) / 1024), 99)} KiB | {keys.Sum(k => Observer.IncrementObjects[k])} / {keys.Sum(At128)} | {IndexBytes / 1e6:0.0} MB |");
        }
    }
}
