using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using TrustedProxy.Audit;
using TrustedProxy.Backup;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Crypto;
using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.Testing.UploadCache;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Tests.Backup;

/// <summary>
/// Old generations retired (issue 14) on the production release loop, on virtual time: once a
/// generation completes, those older than the kept ones have every object but their object 0
/// (base, manifest, increments) deleted from the backend by the deletion sweep, each at its own
/// random time; a restart between the retirement and its scheduling, or between the scheduling and
/// its acknowledgement, loses nothing and schedules nothing twice; recovery still finds and restores
/// the newest generation with its increments.
/// </summary>
public sealed class BackupRetirementTests : IDisposable
{
    private const int BlockSize = 16 * 1024;
    private const int MaxObjectsPerRun = 1000;
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly TemporaryDirectory _directory = new();
    private readonly ProxyKeyRing _keyRing = ProxyKeyRing.FromBytes(SHA256.HashData("backup retirement tests"u8));
    private readonly ServiceProvider _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();

    private static UploadCacheOptions Options => new()
    {
        BlockSizeBytes = BlockSize,
        SlotsPerSecond = 4,
        PoolThreshold = 20,
        MaxHoldSeconds = 3600,
        AlarmAfterSeconds = 7200,
        MeanDeleteDelaySeconds = 20,
    };

    private static BackupOptions Backup => new() { Enabled = true, IntervalSeconds = 30, LagAlarmSeconds = 3600, KeepGenerations = 2 };

    [Fact]
    public async Task OnceGenerationTwoCompletes_GenerationZeroIsDeletedButItsObjectZero_AtRandomTimesInTheSweep_AndRecoveryRestoresTheNewest()
    {
        using var site = await Site.OpenAsync(this, "site", seed: 11);
        using var keys = BackupKeys.From(_keyRing);
        await site.GenerationAsync(0);
        await site.IncrementAsync();
        await site.GenerationAsync(1);
        await site.IncrementAsync();
        Assert.Empty(site.Deletes);
        await site.GenerationAsync(2);
        var state = BackupState.Read(site.BackupDirectory)!;
        var retiredAt = state.LastComplete!.CompletedAt;
        Assert.Equal([0L], state.Retiring!.Select(g => g.Generation));
        Assert.Equal([1L, 2L], state.Generations!.Select(g => g.Generation));

        // The retirement is taken by the engine's next deletion sweep: each row its own delete time.
        while (BackupState.Read(site.BackupDirectory)!.Retiring is { Count: > 0 })
        {
            await site.Rig.RunForAsync(TimeSpan.FromSeconds(0.5));
        }

        var zero = ObjectsOf(keys, 0, site.Puts);
        var deleting = (await site.Rig.Blocks.InStateAsync(BlockState.Deleting, BlockKind.Dummy)).ToDictionary(b => b.ObjectName, b => b.DueAt);
        Assert.True(deleting.Count > 10, $"only {deleting.Count} objects scheduled");
        Assert.All(deleting.Keys, n => Assert.Contains(n, zero));
        Assert.DoesNotContain(keys.NameOf(0, 0), deleting.Keys);
        Assert.Equal(deleting.Count, deleting.Values.Distinct().Count());
        Assert.True(deleting.Values.Max() - deleting.Values.Min() > TimeSpan.FromSeconds(10), "the delete times are bunched");
        Assert.All(deleting.Values, due => Assert.True(due >= retiredAt));
        Assert.All(deleting.Keys, n => Assert.DoesNotContain(n, site.Deletes.Select(d => d.Name)));

        await site.IncrementAsync();
        await site.GenerationAsync(3);
        await site.IncrementAsync();
        await site.Rig.RunForAsync(TimeSpan.FromSeconds(300));

        // Only in the sweep, at or after each object's own time, each once; not all at once (a sweep
        // deletes what is due by then, so the times are the sweeps' own, every 10 s on average).
        foreach (var (at, name) in site.Deletes.Where(d => deleting.ContainsKey(d.Name)))
        {
            Assert.True(at >= deleting[name], $"{name} deleted at {at:O}, due {deleting[name]:O}");
        }

        Assert.Equal(site.Deletes.Count, site.Deletes.Select(d => d.Name).Distinct().Count());
        var sweeps = site.Deletes.Where(d => deleting.ContainsKey(d.Name)).Select(d => d.At).Distinct().Count();
        Assert.True(sweeps >= 2, $"generation 0 went in {sweeps} sweep(s)");

        var stored = (await site.Rig.StoredAsync()).ToHashSet();
        foreach (var retired in new long[] { 0, 1 })
        {
            var objects = ObjectsOf(keys, retired, site.Puts);
            Assert.Contains(keys.NameOf(retired, 0), stored);
            Assert.Equal([keys.NameOf(retired, 0)], objects.Where(stored.Contains));
            Assert.True(objects.Count(n => SequenceOf(keys, retired, n) is >= 1UL << 63 and < BackupKeys.ManifestSequence) >= 2, "the retired generation had no increment");
        }

        foreach (var kept in new long[] { 2, 3 })
        {
            var objects = ObjectsOf(keys, kept, site.Puts);
            Assert.All(objects, n => Assert.Contains(n, stored));
            Assert.Contains(keys.ManifestNameOf(kept), objects);
            Assert.Contains(keys.CommitNameOf(kept, 0), objects);
        }

        Assert.Equal(ObjectsOf(keys, 0, site.Puts).Count + ObjectsOf(keys, 1, site.Puts).Count - 2, site.Deletes.Count);

        // Generation 4 under way (its object 0 out, no manifest): the lookback walks past it to 3.
        Assert.Equal(4, await site.Shipper.StageIfDueAsync(CancellationToken.None));
        await site.Rig.RunForAsync(TimeSpan.FromSeconds(0.5));
        Assert.Contains(keys.NameOf(4, 0), await site.Rig.StoredAsync());
        Assert.Equal(4, site.Shipper.Status().Shipping);

        var recovery = new BackupRecovery(site.Rig.Cloud, _keyRing, BlockSize, site.Time);
        var found = await recovery.FindAsync(CancellationToken.None);
        Assert.Equal(3, found!.Generation);
        var report = await recovery.RecoverAsync(found, Path.Combine(_directory.Path, "new", "data"), Path.Combine(_directory.Path, "new", "certs"), CancellationToken.None);
        Assert.Equal(3, report.Generation);
        Assert.Equal([0L], report.Increments.Applied.Select(a => a.Increment));
        Assert.True(report.Audit.Intact, report.Audit.Summary);
        Assert.True(report.CaChecked);
        Assert.Equal(report.Records, await new RecordIndex(Path.Combine(_directory.Path, "new", "data", "proxy.db")).CountAsync());
    }

    [Fact]
    public async Task WhileANewGenerationShips_ThePreviousChainGoesOn_StatusAndRecoveryKeepItsPointUntilTheNewChainPassesIt_ADamagedOneFallsBack()
    {
        using var site = await Site.OpenAsync(this, "reach", seed: 5);
        using var keys = BackupKeys.From(_keyRing);
        await site.GenerationAsync(0);

        // Uploads waiting in the cache make the next generation many objects, an increment a few.
        for (var i = 0; i < 12; i++)
        {
            await site.Rig.AdmitRecordAsync(2);
        }

        await site.IncrementAsync();

        // Generation 1 is staged; an upload after its snapshot goes out as generation 0's increment 1,
        // which commits while generation 1 is still shipping.
        site.Time.Advance(TimeSpan.FromSeconds(Backup.IntervalSeconds));
        Assert.Equal(1, await site.Shipper.StageIfDueAsync(CancellationToken.None));
        var snapshot = BackupState.Read(site.BackupDirectory)!.Staged!.CreatedAt;
        site.Time.Advance(TimeSpan.FromSeconds(1));
        var handle = await site.UploadAsync();
        Assert.Equal(1, await site.Shipper.StageIncrementIfDueAsync(CancellationToken.None));
        var reach = site.Time.GetUtcNow();
        for (var i = 0; i < 240 && site.Shipper.Status().NewestComplete != 1; i++)
        {
            await site.Rig.RunForAsync(TimeSpan.FromSeconds(0.5));
        }

        Assert.Equal(1, site.Shipper.Status().NewestComplete);
        Assert.Contains(keys.CommitNameOf(0, 1), await site.Rig.StoredAsync());
        var status = site.Shipper.Status();
        Assert.Null(status.LastIncrement);
        Assert.True(reach > snapshot);
        Assert.Equal(reach, status.BackupPoint);

        var recovery = new BackupRecovery(site.Rig.Cloud, _keyRing, BlockSize, site.Time);
        var found = (await recovery.FindAsync(CancellationToken.None))!;
        Assert.Equal(0, found.Generation);
        Assert.Equal(1, found.Fallback!.Generation);
        var first = Path.Combine(_directory.Path, "reach-0");
        var report = await recovery.RecoverAsync(found, Path.Combine(first, "data"), Path.Combine(first, "certs"), CancellationToken.None);
        Assert.Equal(0, report.Generation);
        Assert.Equal([0L, 1L], report.Increments.Applied.Select(a => a.Increment));
        Assert.Equal(reach, report.BackupPoint);
        Assert.True(BackupState.Read(site.BackupDirectory)!.Generations!.Single(g => g.Generation == 1).Objects > 2 * 4, "generation 1 is not larger than an increment");
        Assert.True(report.Audit.Intact, report.Audit.Summary);
        Assert.NotNull(await new RecordIndex(Path.Combine(first, "data", "proxy.db")).FindAsync(handle));
        Assert.Equal(2, BackupState.Read(Path.Combine(first, "data", "backup"))!.NextGeneration);

        // The previous chain damaged: recovery falls back to the newest generation (its snapshot the point).
        Assert.True(await site.Rig.Cloud.DeleteAsync(keys.NameOf(0, BackupKeys.IncrementSequence(1, 0)), CancellationToken.None));
        var second = Path.Combine(_directory.Path, "reach-1");
        var fallback = await recovery.RecoverAsync((await recovery.FindAsync(CancellationToken.None))!, Path.Combine(second, "data"), Path.Combine(second, "certs"), CancellationToken.None);
        Assert.Equal(1, fallback.Generation);
        Assert.Equal(snapshot, fallback.BackupPoint);
        Assert.Null(await new RecordIndex(Path.Combine(second, "data", "proxy.db")).FindAsync(handle));

        // Once generation 1's own increment commits it reaches furthest, and is the backup.
        await site.IncrementAsync();
        Assert.True(site.Shipper.Status().BackupPoint > reach);
        Assert.Equal(1, (await recovery.FindAsync(CancellationToken.None))!.Generation);
    }

    [Fact]
    public async Task ARestartBetweenRetirementAndScheduling_OrBetweenSchedulingAndItsAcknowledgement_LosesNothing_AndSchedulesNothingTwice()
    {
        using var keys = BackupKeys.From(_keyRing);
        var puts = new List<(DateTimeOffset At, ObjectName Name)>();
        var deletes = new List<(DateTimeOffset At, ObjectName Name)>();
        var time = new FakeTimeProvider(Start);

        // The engine never asks for the retirement before the restart.
        using (var site = await Site.OpenAsync(this, "restart", seed: 3, time, source => new HoldingSource(source) { Hold = true }))
        {
            await site.GenerationAsync(0);
            await site.IncrementAsync();
            await site.GenerationAsync(1);
            await site.GenerationAsync(2);
            await site.Rig.RunForAsync(TimeSpan.FromSeconds(60));
            Assert.Equal([0L], BackupState.Read(site.BackupDirectory)!.Retiring!.Select(g => g.Generation));
            Assert.Empty(await site.Rig.Blocks.InStateAsync(BlockState.Deleting, BlockKind.Dummy));
            puts.AddRange(site.Puts);
        }

        // The engine schedules, but the process dies before the shipper hears of it.
        Dictionary<ObjectName, DateTimeOffset> first;
        using (var site = await Site.OpenAsync(this, "restart", seed: 4, time, source => new HoldingSource(source) { DropAcknowledgements = true }))
        {
            var state = BackupState.Read(site.BackupDirectory)!;
            Assert.Equal([0L], state.Retiring!.Select(g => g.Generation));
            await site.Rig.RunForAsync(TimeSpan.FromSeconds(1));
            first = (await site.Rig.Blocks.InStateAsync(BlockState.Deleting, BlockKind.Dummy)).ToDictionary(b => b.ObjectName, b => b.DueAt);
            Assert.True(first.Count > 10, $"only {first.Count} objects scheduled");
            Assert.Equal([0L], BackupState.Read(site.BackupDirectory)!.Retiring!.Select(g => g.Generation));
            Assert.Equal(0, BackupState.Read(site.BackupDirectory)!.RetiringScheduled);
            deletes.AddRange(site.Deletes);
        }

        // Scheduled again after the restart: the rows already being deleted keep their own times.
        using (var site = await Site.OpenAsync(this, "restart", seed: 5, time))
        {
            while (BackupState.Read(site.BackupDirectory)!.Retiring is { Count: > 0 })
            {
                await site.Rig.RunForAsync(TimeSpan.FromSeconds(0.5));
            }

            foreach (var row in await site.Rig.Blocks.InStateAsync(BlockState.Deleting, BlockKind.Dummy))
            {
                Assert.Equal(first[row.ObjectName], row.DueAt);
            }

            await site.Rig.RunForAsync(TimeSpan.FromSeconds(300));
            deletes.AddRange(site.Deletes);
            var stored = (await site.Rig.StoredAsync()).ToHashSet();
            var zero = ObjectsOf(keys, 0, puts);
            Assert.Equal([keys.NameOf(0, 0)], zero.Where(stored.Contains));
            Assert.Equal(zero.Count - 1, deletes.Count);
            Assert.Equal(zero.Where(n => n != keys.NameOf(0, 0)).Select(n => n.ToString()).Order(), deletes.Select(d => d.Name.ToString()).Order());
            Assert.Empty(await site.Rig.Blocks.InStateAsync(BlockState.Deleting, BlockKind.Dummy));
            foreach (var kept in new long[] { 1, 2 })
            {
                Assert.All(ObjectsOf(keys, kept, puts), n => Assert.Contains(n, stored));
            }
        }
    }

    [Fact]
    public void Retire_KeepsTheNewestCompleteOnes_AndEverythingNewer_RetiresOlderOnesIncludingAbandoned_AndNeverObjectZero()
    {
        GenerationObjects Complete(long g) => new(g, 4, 4, [3, 2]);
        var abandoned = new GenerationObjects(2, 10, 3, []);
        IReadOnlyList<GenerationObjects> generations = [Complete(0), Complete(1), abandoned, Complete(3)];

        var (kept, retired) = BackupShipper.Retire(generations, keep: 2, newest: 3);
        Assert.Equal([1L, 2L, 3L], kept.Select(g => g.Generation));
        Assert.Equal([0L], retired.Select(g => g.Generation));

        (kept, retired) = BackupShipper.Retire(generations, keep: 1, newest: 3);
        Assert.Equal([3L], kept.Select(g => g.Generation));
        Assert.Equal([0L, 1L, 2L], retired.Select(g => g.Generation));

        (kept, retired) = BackupShipper.Retire(generations, keep: 3, newest: 3);
        Assert.Equal(generations, kept);
        Assert.Empty(retired);

        // Base 1, 2 and the manifest; increment 0 (two data objects, commit), 1 (one, commit); and the
        // names a crash could have left unrecorded: increment 2's first object and commit.
        Assert.Equal(
            [1UL, 2UL, BackupKeys.ManifestSequence,
             BackupKeys.IncrementSequence(0, 0), BackupKeys.IncrementSequence(0, 1), BackupKeys.IncrementSequence(0, BackupKeys.CommitIndex),
             BackupKeys.IncrementSequence(1, 0), BackupKeys.IncrementSequence(1, BackupKeys.CommitIndex),
             BackupKeys.IncrementSequence(2, 0), BackupKeys.IncrementSequence(2, BackupKeys.CommitIndex)],
            Complete(0).RetiredSequences());

        // Abandoned after three objects: 1, 2, and 3 (a put whose progress a crash may have lost).
        Assert.Equal([1UL, 2UL, 3UL], abandoned.RetiredSequences());
        Assert.DoesNotContain(0UL, (Complete(0) with { PartialIncrement = 2 }).RetiredSequences());
        Assert.Contains(BackupKeys.IncrementSequence(2, 2), (Complete(0) with { PartialIncrement = 2 }).RetiredSequences());
    }

    [Fact]
    public async Task ScheduleDeletion_TakesReleasedDummyRowsByName_EachOnce_NeverARealBlock_AndSkipsNamesNoRowCarries()
    {
        var time = new FakeTimeProvider(Start);
        using var rig = await EngineRig.OpenAsync(Path.Combine(_directory.Path, "index"), Options with { MaxHoldSeconds = 30 }, time, seed: 9);
        var real = (await rig.AdmitRecordAsync(1))[0];
        await rig.RunForAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(BlockState.Released, (await rig.Blocks.FindAsync(real.Id))!.State);
        var dummies = await rig.Blocks.InStateAsync(BlockState.Released, BlockKind.Dummy);
        ObjectName[] names = [dummies[0].ObjectName, dummies[1].ObjectName, real.ObjectName, ObjectName.NewRandom()];
        var draws = 0;

        Assert.Equal(2, await rig.Blocks.ScheduleDeletionAsync(names, () => Start.AddHours(++draws)));
        Assert.Equal(0, await rig.Blocks.ScheduleDeletionAsync(names, () => Start.AddHours(10)));

        var deleting = await rig.Blocks.InStateAsync(BlockState.Deleting, BlockKind.Dummy);
        Assert.Equal(names[..2].Select(n => n.ToString()).Order(), deleting.Select(d => d.ObjectName.ToString()).Order());
        Assert.Equal([Start.AddHours(1), Start.AddHours(2)], deleting.Select(d => d.DueAt).Order());
        Assert.Equal(BlockState.Released, (await rig.Blocks.FindAsync(real.Id))!.State);
    }

    [Fact]
    public void KeepGenerations_IsZeroByDefault_KeepingEveryGeneration_AndANegativeCountIsRefusedAtStartUp()
    {
        Assert.Empty(new BackupOptions().Validate());
        Assert.Equal(0, new BackupOptions().KeepGenerations);
        Assert.Contains(new BackupOptions { KeepGenerations = -1 }.Validate(), e => e.Contains("KeepGenerations", StringComparison.Ordinal));
        Assert.Contains(
            BackupServiceCollectionExtensions.Validate(new BackupOptions { Enabled = true, KeepGenerations = -1 }, new UploadCacheOptions { Enabled = true }),
            e => e.Contains("KeepGenerations", StringComparison.Ordinal));

        // 0: nothing retired, and the counts of generations older than the newest are not kept (they never will be needed).
        var (kept, retired) = BackupShipper.Retire([.. Enumerable.Range(0, 4).Select(g => new GenerationObjects(g, 4, 4, [3, 2]))], keep: 0, newest: 3);
        Assert.Empty(retired);
        Assert.Equal([3L], kept.Select(g => g.Generation));
    }

    // Every object of generation g the cloud was given (base, manifest, increments and commits).
    private static List<ObjectName> ObjectsOf(BackupKeys keys, long generation, IEnumerable<(DateTimeOffset At, ObjectName Name)> puts)
    {
        var candidates = Candidates(generation).ToDictionary(s => keys.NameOf(generation, s), s => s);
        var objects = puts.Select(p => p.Name).Where(candidates.ContainsKey).Distinct().ToList();
        Assert.True(objects.Count < MaxObjectsPerRun / 4, $"{objects.Count} objects: more than the test looks for");
        return objects;
    }

    private static ulong SequenceOf(BackupKeys keys, long generation, ObjectName name) =>
        Candidates(generation).First(s => keys.NameOf(generation, s) == name);

    private static IEnumerable<ulong> Candidates(long generation)
    {
        for (ulong s = 0; s < MaxObjectsPerRun; s++)
        {
            yield return s;
        }

        yield return BackupKeys.ManifestSequence;
        for (long k = 0; k < 3; k++)
        {
            for (long i = 0; i < MaxObjectsPerRun; i++)
            {
                yield return BackupKeys.IncrementSequence(k, i);
            }

            yield return BackupKeys.IncrementSequence(k, BackupKeys.CommitIndex);
        }
    }

    public void Dispose()
    {
        _metrics.Dispose();
        _keyRing.Dispose();
        _directory.Dispose();
    }

    /// <summary>
    /// One proxy's data directory on the rig: a signed audit log, a CA, the shipper as the engine's
    /// cover source (through a test decorator when given), a store recording every put and delete.
    /// Disposing and opening again on the same name is a restart.
    /// </summary>
    private sealed class Site : IDisposable
    {
        private readonly BackupRetirementTests _tests;
        private readonly string _directory;

        private Site(BackupRetirementTests tests, string directory, FakeTimeProvider time, BackupShipper shipper)
        {
            _tests = tests;
            _directory = directory;
            Time = time;
            Shipper = shipper;
        }

        public FakeTimeProvider Time { get; }

        public BackupShipper Shipper { get; }

        public EngineRig Rig { get; private set; } = null!;

        public List<(DateTimeOffset At, ObjectName Name)> Puts { get; } = [];

        public List<(DateTimeOffset At, ObjectName Name)> Deletes { get; } = [];

        public string BackupDirectory => Path.Combine(_directory, "backup");

        public static async Task<Site> OpenAsync(BackupRetirementTests tests, string name, int seed, FakeTimeProvider? time = null, Func<ICoverPayloadSource, ICoverPayloadSource>? wrap = null)
        {
            var directory = Path.Combine(tests._directory.Path, name);
            time ??= new FakeTimeProvider(Start);
            if (!Directory.Exists(directory))
            {
                await PrepareAsync(tests._keyRing, directory, time);
            }

            var keys = BackupKeys.From(tests._keyRing);
            var shipper = new BackupShipper(
                Path.Combine(directory, "backup"),
                new BackupSnapshotTaker(directory, directory + "-certs", TimeSpan.FromSeconds(5)),
                new BackupGenerationWriter(new BackupObjectSealer(keys, BlockSize)),
                Microsoft.Extensions.Options.Options.Create(Backup),
                BlockSize,
                time,
                tests._metrics.GetRequiredService<IMeterFactory>(),
                NullLogger<BackupShipper>.Instance)
            {
                NameOf = keys.NameOf,
            };
            var site = new Site(tests, directory, time, shipper);
            site.Rig = await EngineRig.OpenAsync(directory, Options, time, inner => new RecordingStore(inner, time, site.Puts, site.Deletes), seed, wrap is null ? shipper : wrap(shipper));
            return site;
        }

        /// <summary>Stages generation <paramref name="generation"/> (due: the interval passed) and runs until it is complete.</summary>
        public async Task GenerationAsync(long generation)
        {
            Time.Advance(TimeSpan.FromSeconds(Backup.IntervalSeconds));
            Assert.Equal(generation, await Shipper.StageIfDueAsync(CancellationToken.None));
            for (var i = 0; i < 120 && Shipper.Status().NewestComplete != generation; i++)
            {
                await Rig.RunForAsync(TimeSpan.FromSeconds(0.5));
            }

            Assert.Equal(generation, Shipper.Status().NewestComplete);
        }

        /// <summary>An upload and an audited change, not yet staged: its handle.</summary>
        public async Task<string> UploadAsync()
        {
            var blocks = await Rig.AdmitRecordAsync(1);
            await AuditAsync(_tests._keyRing, _directory, Time);
            return blocks[0].Handle!;
        }

        /// <summary>An upload and an audited change, shipped as the newest generation's next increment.</summary>
        public async Task IncrementAsync()
        {
            var before = Shipper.Status().LastIncrement;
            await Rig.AdmitRecordAsync(1);
            await AuditAsync(_tests._keyRing, _directory, Time);
            Assert.NotNull(await Shipper.StageIncrementIfDueAsync(CancellationToken.None));
            for (var i = 0; i < 120 && Shipper.Status().LastIncrement != (before ?? -1) + 1; i++)
            {
                await Rig.RunForAsync(TimeSpan.FromSeconds(0.5));
            }

            Assert.Equal((before ?? -1) + 1, Shipper.Status().LastIncrement);
        }

        public void Dispose()
        {
            Rig.Dispose();
            Shipper.Dispose();
        }

        private static async Task PrepareAsync(ProxyKeyRing keyRing, string directory, TimeProvider time)
        {
            Directory.CreateDirectory(directory);
            await using var audit = OpenAudit(keyRing, directory, time);
            ProxyCertificateAuthority.Create(new CertificateAuthorityPaths(directory + "-certs"), "Test Root", passphrase: null, time, audit);
            await audit.AppendAsync(AuditEvents.KeySplit("i", "s", 3, 5));
        }

        private static async Task AuditAsync(ProxyKeyRing keyRing, string directory, TimeProvider time)
        {
            await using var audit = OpenAudit(keyRing, directory, time);
            await audit.AppendAsync(AuditEvents.KeySplit("i", "t", 3, 5));
        }

        private static AuditLog OpenAudit(ProxyKeyRing keyRing, string directory, TimeProvider time) =>
            AuditLog.Open(Path.Combine(directory, "audit"), keyRing, new AuditLogOptions(), time, new FixedAuditContext(new AuditContext(AuditActor.Operator("tester"))));
    }

    /// <summary>The shipper as the engine sees it, with its retirement held back or its acknowledgements lost (a crash before they were written).</summary>
    private sealed class HoldingSource(ICoverPayloadSource inner) : ICoverPayloadSource
    {
        public bool Hold { get; init; }

        public bool DropAcknowledgements { get; init; }

        public CoverPayload? Peek(long length) => inner.Peek(length);

        public void Shipped(CoverPayload payload) => inner.Shipped(payload);

        public RetiredObjects? PeekRetired(int max) => Hold ? null : inner.PeekRetired(max);

        public void RetirementScheduled(RetiredObjects retired)
        {
            if (!DropAcknowledgements)
            {
                inner.RetirementScheduled(retired);
            }
        }
    }

    /// <summary>Every put and delete the cloud saw: when, and under which name.</summary>
    private sealed class RecordingStore(IObjectStore inner, TimeProvider time, List<(DateTimeOffset At, ObjectName Name)> puts, List<(DateTimeOffset At, ObjectName Name)> deletes) : IObjectStore
    {
        public string Name => inner.Name;

        public Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
        {
            puts.Add((time.GetUtcNow(), name));
            return inner.PutIfAbsentAsync(name, content, length, cancellationToken);
        }

        public Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken)
        {
            deletes.Add((time.GetUtcNow(), name));
            return inner.DeleteAsync(name, cancellationToken);
        }

        public Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken) => inner.OpenReadAsync(name, cancellationToken);

        public Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken) => inner.ExistsAsync(name, cancellationToken);

        public IAsyncEnumerable<StoredObject> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);
    }
}
