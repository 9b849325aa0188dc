using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using TrustedProxy.Backup;
using TrustedProxy.Crypto;
using TrustedProxy.Storage;
using TrustedProxy.Testing.UploadCache;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Tests.Backup;

/// <summary>
/// Increments on the production release loop, on virtual time: after a complete generation, each
/// acknowledged upload (and audited change) ships as an increment in dummy slots only (the cloud
/// sees the same puts with the backup on or off), and recovery replays the base and every committed
/// increment bit-exact; a damaged committed increment is refused, a missing one ends the replay.
/// </summary>
public sealed class BackupIncrementTests : IDisposable
{
    private const int BlockSize = 4096;
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly TemporaryDirectory _directory = new();
    private readonly ProxyKeyRing _keyRing = ProxyKeyRing.FromBytes(SHA256.HashData("backup increment tests"u8));
    private readonly ServiceProvider _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();

    private static UploadCacheOptions Options => new()
    {
        BlockSizeBytes = BlockSize,
        SlotsPerSecond = 10,
        PoolThreshold = 20,
        MaxHoldSeconds = 3600,
        AlarmAfterSeconds = 7200,
    };

    private static BackupOptions Backup => new() { Enabled = true, IntervalSeconds = 3600, LagAlarmSeconds = 120 };

    [Fact]
    public async Task Increments_GoOutOnlyInDummySlots_TheCloudSeesTheSamePutTimesAndSizes_WithTheBackupOnOrOff()
    {
        var off = await RunAsync(Path.Combine(_directory.Path, "off"), backupOn: false);
        var on = await RunAsync(Path.Combine(_directory.Path, "on"), backupOn: true);

        Assert.True(off.Puts.Count > 1000, $"only {off.Puts.Count} puts");
        Assert.Equal(off.Puts.Select(p => (p.At, p.Length)), on.Puts.Select(p => (p.At, p.Length)));
        Assert.All(on.Puts, p => Assert.Equal(BlockSize, p.Length));
        Assert.Equal(off.RealSlots, on.RealSlots);

        // Every increment object went out, once, in a slot that would have carried a dummy.
        using var keys = BackupKeys.From(_keyRing);
        var incrementNames = on.IncrementObjects
            .SelectMany((objects, k) => Enumerable.Range(0, (int)objects - 1).Select(i => keys.NameOf(0, BackupKeys.IncrementSequence(k, i))).Append(keys.CommitNameOf(0, k)))
            .ToHashSet();
        Assert.Equal(2, on.IncrementObjects.Count);
        Assert.Equal(incrementNames.Count, on.Puts.Count(p => incrementNames.Contains(p.Name)));
        Assert.Equal(0, on.Status.NewestComplete);
        Assert.Equal(1, on.Status.LastIncrement);
        Assert.Equal(on.IncrementTakenAt, on.Status.BackupPoint);
        Assert.Equal(0, on.Status.ObjectsWaiting);
    }

    [Fact]
    public async Task TheBaseAndEveryCommittedIncrement_ReplayBitExact_TheUploadsAfterTheGenerationAreRestoredAndNamedByHandle()
    {
        var directory = Path.Combine(_directory.Path, "site");
        var run = await RunAsync(directory, backupOn: true);
        using var keys = BackupKeys.From(_keyRing);
        var restorer = new BackupRestorer(new FileSystemObjectStore(Path.Combine(directory, "cloud")), keys, new BackupObjectSealer(keys, BlockSize));
        var found = (await restorer.FindNewestCompleteAsync(CancellationToken.None))!;
        Assert.Equal(3, found.Manifest.Records);

        var (target, replay) = await RestoreAsync(restorer, found);

        Assert.Equal([0L, 1L], replay.Applied.Select(a => a.Increment));
        Assert.Null(replay.Gap);
        Assert.Equal(run.IncrementTakenAt, replay.Last!.CreatedAt);
        Assert.Equal(5, replay.Last.Records);
        Assert.Equal(run.NewHandles, replay.Handles);

        // The state as the last increment saw it: the index's records, every waiting upload's ciphertext
        // as it was on disk, nothing the index does not hold as waiting, the audit log.
        Assert.Equal(Handles(Path.Combine(directory, "proxy.db")), Handles(Path.Combine(target, "data", "proxy.db")));
        var restored = Directory.GetFiles(Path.Combine(target, "data", "staging"), "*.tpx").ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        var waiting = BackupSnapshotTaker.ReadIndex(Path.Combine(target, "data", "proxy.db")).Handles;
        Assert.Equal(waiting.Select(h => h + ".tpx").Order(), restored.Keys.Order());
        Assert.Equal(replay.Last.WaitingBlocks, BackupSnapshotTaker.ReadIndex(Path.Combine(target, "data", "proxy.db")).Waiting);
        foreach (var (name, bytes) in restored)
        {
            Assert.Equal(run.StagedAtLastIncrement[name], bytes);
        }

        // Both uploads after the generation are in the restored index; the last one still waited, so its
        // ciphertext is restored (the first had left for the cloud before the second increment).
        Assert.All(run.NewHandles, h => Assert.Contains(h, Handles(Path.Combine(target, "data", "proxy.db"))));
        Assert.Contains(run.NewHandles[^1] + ".tpx", restored.Keys);

        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(directory, "audit", "audit.log")), await File.ReadAllBytesAsync(Path.Combine(target, "data", "audit", "audit.log")));

        // The increments carried the index as changed pages, which rebuilt, page for page, the copy the
        // last increment was taken from (kept by the shipper as the chain's end; older copies pruned).
        // (The last increment's whole stream is smaller than the index it rebuilt, so it cannot hold a
        // whole copy; here most of each is the dummies' rows the release loop added meanwhile.)
        var index = new FileInfo(Path.Combine(target, "data", "proxy.db")).Length;
        Assert.True(replay.Last.StreamBytes < index, $"the last increment: {replay.Last.StreamBytes} bytes, the index {index}");
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(directory, "backup", "index-0-1.db")), await File.ReadAllBytesAsync(Path.Combine(target, "data", "proxy.db")));
        Assert.Equal(["index-0-1.db"], Directory.GetFiles(Path.Combine(directory, "backup"), "index-*.db").Select(Path.GetFileName));
    }

    [Fact]
    public async Task AnAlteredOrHalfMissingCommittedIncrement_IsRefused_AMissingCommitEndsTheReplayThere_AndAGapIsReported()
    {
        var directory = Path.Combine(_directory.Path, "site");
        var run = await RunAsync(directory, backupOn: true);
        var cloud = Path.Combine(directory, "cloud");
        using var keys = BackupKeys.From(_keyRing);
        var restorer = new BackupRestorer(new FileSystemObjectStore(cloud), keys, new BackupObjectSealer(keys, BlockSize));
        var found = (await restorer.FindNewestCompleteAsync(CancellationToken.None))!;
        string ObjectFile(long increment, long index) => Path.Combine(cloud, keys.NameOf(0, BackupKeys.IncrementSequence(increment, index)).ToString());
        string CommitFile(long increment) => Path.Combine(cloud, keys.CommitNameOf(0, increment).ToString());

        // An altered object of a committed increment: the whole recovery is refused.
        var original = await File.ReadAllBytesAsync(ObjectFile(1, 0));
        var flipped = original.ToArray();
        flipped[200] ^= 0x01;
        await File.WriteAllBytesAsync(ObjectFile(1, 0), flipped);
        var altered = await Assert.ThrowsAsync<BackupIntegrityException>(() => RestoreAsync(restorer, found));
        Assert.Contains("0/increment 1/0 fails its authentication", altered.Message);
        await File.WriteAllBytesAsync(ObjectFile(1, 0), original);

        // A data object gone under a commit: damage, refused.
        File.Move(ObjectFile(1, 0), ObjectFile(1, 0) + ".aside");
        var missing = await Assert.ThrowsAsync<BackupIntegrityException>(() => RestoreAsync(restorer, found));
        Assert.Contains("0/increment 1/0 is missing", missing.Message);
        File.Move(ObjectFile(1, 0) + ".aside", ObjectFile(1, 0));

        // The last increment without its commit (shipping cut short): replay ends at the one before.
        File.Move(CommitFile(1), CommitFile(1) + ".aside");
        var (_, truncated) = await RestoreAsync(restorer, found);
        Assert.Equal([0L], truncated.Applied.Select(a => a.Increment));
        Assert.Null(truncated.Gap);
        File.Move(CommitFile(1) + ".aside", CommitFile(1));

        // An increment in the middle missing: the replay stops before it, says so, and does not fail.
        File.Move(CommitFile(0), CommitFile(0) + ".aside");
        var (target, gap) = await RestoreAsync(restorer, found);
        Assert.Empty(gap.Applied);
        Assert.Equal(0, gap.Gap);
        Assert.Equal(1, gap.LaterCommitted);
        Assert.Equal(3, Handles(Path.Combine(target, "data", "proxy.db")).Count);
        File.Move(CommitFile(0) + ".aside", CommitFile(0));

        var (_, whole) = await RestoreAsync(restorer, found);
        Assert.Equal(2, whole.Applied.Count);
        Assert.Equal(run.IncrementTakenAt, whole.Last!.CreatedAt);
    }

    [Fact]
    public async Task NothingChanged_NoIncrement_AndBeforeTheFirstCompleteGenerationNone()
    {
        var directory = Path.Combine(_directory.Path, "quiet");
        var time = new FakeTimeProvider(Start);
        Prepare(directory);
        using var shipper = Shipper(directory, time);
        using var rig = await EngineRig.OpenAsync(directory, Options, time, seed: 5, cover: shipper);
        await rig.AdmitRecordAsync(2);
        Assert.Null(await shipper.StageIncrementIfDueAsync(CancellationToken.None));
        Assert.Equal(0, await shipper.StageIfDueAsync(CancellationToken.None));
        await rig.RunForAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, shipper.Status().NewestComplete);

        Assert.Null(await shipper.StageIncrementIfDueAsync(CancellationToken.None));

        await rig.AdmitRecordAsync(1);
        Assert.Equal(0, await shipper.StageIncrementIfDueAsync(CancellationToken.None));
        Assert.Null(await shipper.StageIncrementIfDueAsync(CancellationToken.None));
    }

    [Fact]
    public async Task AnIncrementsShippedProgress_SurvivesARestart_ItGoesOnFromItsNextObject_AndIsReplayed()
    {
        var directory = Path.Combine(_directory.Path, "restart");
        var time = new FakeTimeProvider(Start);
        Prepare(directory);
        long objects;
        string late;
        using (var shipper = Shipper(directory, time))
        using (var rig = await EngineRig.OpenAsync(directory, Options, time, seed: 3, cover: shipper))
        {
            await rig.AdmitRecordAsync(2);
            await shipper.StageIfDueAsync(CancellationToken.None);
            await rig.RunForAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(0, shipper.Status().NewestComplete);

            late = (await rig.AdmitRecordAsync(1))[0].Handle!;
            Assert.Equal(0, await shipper.StageIncrementIfDueAsync(CancellationToken.None));
            objects = shipper.Status().ObjectsWaiting;
            Assert.True(objects >= 3, $"only {objects} increment objects");
            await rig.RunForAsync(TimeSpan.FromSeconds(1));
            Assert.InRange(shipper.Status().ObjectsWaiting, 1, objects - 1);
        }

        using (var shipper = Shipper(directory, time))
        using (var rig = await EngineRig.OpenAsync(directory, Options, time, seed: 4, cover: shipper))
        {
            Assert.InRange(shipper.Status().ObjectsWaiting, 1, objects - 1);
            Assert.Null(shipper.Status().LastIncrement);
            Assert.Null(await shipper.StageIncrementIfDueAsync(CancellationToken.None));
            await rig.RunForAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(0, shipper.Status().LastIncrement);
            Assert.Equal(0, shipper.Status().ObjectsWaiting);
        }

        using var keys = BackupKeys.From(_keyRing);
        var restorer = new BackupRestorer(new FileSystemObjectStore(Path.Combine(directory, "cloud")), keys, new BackupObjectSealer(keys, BlockSize));
        var (_, replay) = await RestoreAsync(restorer, (await restorer.FindNewestCompleteAsync(CancellationToken.None))!);
        Assert.Single(replay.Applied);
        Assert.Equal([late], replay.Handles);
    }

    [Fact]
    public async Task ALostStagedIncrement_IsTakenAgainUnderItsNumber_WhenNoneOfItLeft_ElseANewGenerationIsDue()
    {
        var directory = Path.Combine(_directory.Path, "lost");
        var time = new FakeTimeProvider(Start);
        Prepare(directory);
        string IncrementFile(long k) => Path.Combine(directory, "backup", $"generation-0.increment-{k}.objects");
        using (var shipper = Shipper(directory, time))
        using (var rig = await EngineRig.OpenAsync(directory, Options, time, seed: 3, cover: shipper))
        {
            await rig.AdmitRecordAsync(2);
            await shipper.StageIfDueAsync(CancellationToken.None);
            await rig.RunForAsync(TimeSpan.FromSeconds(60));
            await rig.AdmitRecordAsync(1);
            Assert.Equal(0, await shipper.StageIncrementIfDueAsync(CancellationToken.None));
        }

        File.Delete(IncrementFile(0));
        using (var shipper = Shipper(directory, time))
        using (var rig = await EngineRig.OpenAsync(directory, Options, time, seed: 4, cover: shipper))
        {
            Assert.False(shipper.Due());
            Assert.Equal(0, await shipper.StageIncrementIfDueAsync(CancellationToken.None));
            var objects = shipper.Status().ObjectsWaiting;
            await rig.RunForAsync(TimeSpan.FromSeconds(1));
            Assert.InRange(shipper.Status().ObjectsWaiting, 1, objects - 1);
        }

        File.Delete(IncrementFile(0));
        using (var shipper = Shipper(directory, time))
        {
            Assert.True(shipper.Due());
            Assert.Null(await shipper.StageIncrementIfDueAsync(CancellationToken.None));
        }
    }

    [Fact]
    public async Task ACrashAfterObjectsWereShippedButBeforeTheirProgressWasWritten_DoesNotStallTheDummySlots_AndTheIncrementCommits()
    {
        var directory = Path.Combine(_directory.Path, "crash");
        var time = new FakeTimeProvider(Start);
        Prepare(directory);
        var stateFile = Path.Combine(directory, "backup", BackupState.FileName);
        byte[] stale;
        using (var shipper = Shipper(directory, time))
        using (var rig = await EngineRig.OpenAsync(directory, Options, time, seed: 3, cover: shipper))
        {
            await rig.AdmitRecordAsync(2);
            await shipper.StageIfDueAsync(CancellationToken.None);
            await rig.RunForAsync(TimeSpan.FromSeconds(60));
            await rig.AdmitRecordAsync(1);
            Assert.Equal(0, await shipper.StageIncrementIfDueAsync(CancellationToken.None));
            var objects = shipper.Status().ObjectsWaiting;
            stale = await File.ReadAllBytesAsync(stateFile);
            await rig.RunForAsync(TimeSpan.FromSeconds(1));
            Assert.InRange(shipper.Status().ObjectsWaiting, 1, objects - 1);
        }

        // The objects are in the cloud and the index under their names; the progress says they are not.
        await File.WriteAllBytesAsync(stateFile, stale);
        using (var shipper = Shipper(directory, time))
        using (var rig = await EngineRig.OpenAsync(directory, Options, time, seed: 4, cover: shipper))
        {
            await rig.RunForAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(0, shipper.Status().LastIncrement);
            Assert.Equal(0, shipper.Status().ObjectsWaiting);
        }

        using var keys = BackupKeys.From(_keyRing);
        var restorer = new BackupRestorer(new FileSystemObjectStore(Path.Combine(directory, "cloud")), keys, new BackupObjectSealer(keys, BlockSize));
        var (_, replay) = await RestoreAsync(restorer, (await restorer.FindNewestCompleteAsync(CancellationToken.None))!);
        Assert.Single(replay.Applied);
    }

    [Fact]
    public async Task AnIncrementWithMoreNewUploadsThanItsCommitCanName_IsStagedAndCommitted_NamingThoseThatFit_AndReplaysThemAll()
    {
        // A commit is one object; at 4 KiB it has room for about 130 handles. Before the fix, staging
        // such an increment threw (the commit did not fit) on every check until the next generation.
        var directory = Path.Combine(_directory.Path, "many");
        var time = new FakeTimeProvider(Start);
        Prepare(directory);
        var options = Options with { PoolThreshold = 1_000_000 };
        var late = new List<string>();
        using (var shipper = Shipper(directory, time))
        using (var rig = await EngineRig.OpenAsync(directory, options, time, seed: 7, cover: shipper))
        {
            await rig.AdmitRecordAsync(1);
            await shipper.StageIfDueAsync(CancellationToken.None);
            await rig.RunForAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(0, shipper.Status().NewestComplete);

            for (var i = 0; i < 300; i++)
            {
                late.Add((await rig.AdmitRecordAsync(1))[0].Handle!);
            }

            Assert.Equal(0, await shipper.StageIncrementIfDueAsync(CancellationToken.None));
            await rig.RunForAsync(TimeSpan.FromSeconds(120));
            Assert.Equal(0, shipper.Status().LastIncrement);
        }

        using var keys = BackupKeys.From(_keyRing);
        var restorer = new BackupRestorer(new FileSystemObjectStore(Path.Combine(directory, "cloud")), keys, new BackupObjectSealer(keys, BlockSize));
        var (target, replay) = await RestoreAsync(restorer, (await restorer.FindNewestCompleteAsync(CancellationToken.None))!);
        var commit = Assert.Single(replay.Applied);
        Assert.InRange(commit.Handles.Count, 100, 299);
        Assert.Equal(300, commit.Handles.Count + commit.HandlesOmitted);
        Assert.Equal(300, replay.Handles.Count + replay.HandlesOmitted);
        Assert.All(commit.Handles, h => Assert.Contains(h, late));
        var restored = Directory.GetFiles(Path.Combine(target, "data", "staging"), "*.tpx").Select(f => Path.GetFileNameWithoutExtension(f)).ToHashSet();
        var waiting = BackupSnapshotTaker.ReadIndex(Path.Combine(target, "data", "proxy.db")).Handles;
        Assert.Equal(waiting.Order(), restored.Order());
        Assert.All(late, h => Assert.Contains(h, Handles(Path.Combine(target, "data", "proxy.db"))));
    }

    private async Task<(string Target, IncrementReplay Replay)> RestoreAsync(BackupRestorer restorer, FoundGeneration found)
    {
        var target = Path.Combine(_directory.Path, "restore-" + Guid.NewGuid().ToString("N"));
        var data = Path.Combine(target, "data");
        var certs = Path.Combine(target, "certs");
        await restorer.RestoreAsync(found, data, certs, Path.Combine(target, "work"), CancellationToken.None);
        var replay = await restorer.ReplayIncrementsAsync(found, data, certs, Path.Combine(target, "work", "increments"), CancellationToken.None);
        return (target, replay);
    }

    private sealed record Run(
        List<(DateTimeOffset At, long Length, ObjectName Name)> Puts, long RealSlots, List<long> IncrementObjects, BackupStatus Status,
        DateTimeOffset IncrementTakenAt, List<string> NewHandles, Dictionary<string, byte[]> StagedAtLastIncrement);

    // A generation of three uploads, then two increments, each after one more upload and its audit entry.
    private async Task<Run> RunAsync(string directory, bool backupOn)
    {
        var time = new FakeTimeProvider(Start);
        Prepare(directory);
        using var shipper = Shipper(directory, time);
        RecordingStore? recording = null;
        using var rig = await EngineRig.OpenAsync(directory, Options, time, inner => recording = new RecordingStore(inner, time), seed: 11, cover: backupOn ? shipper : null);
        for (var i = 0; i < 3; i++)
        {
            await rig.AdmitRecordAsync(2);
        }

        if (backupOn)
        {
            Assert.Equal(0, await shipper.StageIfDueAsync(CancellationToken.None));
        }

        await rig.RunForAsync(TimeSpan.FromSeconds(60));
        var incrementObjects = new List<long>();
        var handles = new List<string>();
        var takenAt = DateTimeOffset.MinValue;
        var staged = new Dictionary<string, byte[]>();
        for (var k = 0; k < 2; k++)
        {
            var blocks = await rig.AdmitRecordAsync(2);
            handles.Add(blocks[0].Handle!);
            await File.AppendAllTextAsync(Path.Combine(directory, "audit", "audit.log"), $"{{\"entry\":{k + 2}}}\n");
            time.Advance(TimeSpan.FromMilliseconds(10));
            if (backupOn)
            {
                Assert.Equal(k, await shipper.StageIncrementIfDueAsync(CancellationToken.None));
                incrementObjects.Add(shipper.Status().ObjectsWaiting);
                takenAt = time.GetUtcNow();
            }

            staged = Directory.GetFiles(Path.Combine(directory, "staging"), "*.tpx").ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
            await rig.RunForAsync(TimeSpan.FromSeconds(60));
        }

        return new Run(recording!.Puts.ToList(), rig.Engine.Snapshot().ReleasedBlocks, incrementObjects, shipper.Status(), takenAt, handles, staged);
    }

    private static List<string> Handles(string database)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT handle FROM records ORDER BY handle";
        var handles = new List<string>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            handles.Add(reader.GetString(0));
        }

        return handles;
    }

    private static void Prepare(string directory)
    {
        Directory.CreateDirectory(Path.Combine(directory, "audit"));
        File.WriteAllText(Path.Combine(directory, "audit", "audit.log"), "{\"entry\":1}\n");
        Directory.CreateDirectory(Path.Combine(directory + "-certs", "ca"));
        File.WriteAllText(Path.Combine(directory + "-certs", "ca", "ca.crt.pem"), "not really a CA");
    }

    private BackupShipper Shipper(string directory, TimeProvider time)
    {
        var keys = BackupKeys.From(_keyRing);
        return new BackupShipper(
            Path.Combine(directory, "backup"),
            new BackupSnapshotTaker(directory, directory + "-certs", TimeSpan.FromSeconds(5)),
            new BackupGenerationWriter(new BackupObjectSealer(keys, BlockSize)),
            Microsoft.Extensions.Options.Options.Create(Backup),
            BlockSize,
            time,
            _metrics.GetRequiredService<IMeterFactory>(),
            NullLogger<BackupShipper>.Instance)
        {
            NameOf = keys.NameOf,
        };
    }

    public void Dispose()
    {
        _metrics.Dispose();
        _keyRing.Dispose();
        _directory.Dispose();
    }

    private sealed class RecordingStore(IObjectStore inner, TimeProvider time) : IObjectStore
    {
        public List<(DateTimeOffset At, long Length, ObjectName Name)> Puts { get; } = [];

        public string Name => inner.Name;

        public Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
        {
            Puts.Add((time.GetUtcNow(), length, name));
            return inner.PutIfAbsentAsync(name, content, length, cancellationToken);
        }

        public Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken) => inner.OpenReadAsync(name, cancellationToken);

        public Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken) => inner.DeleteAsync(name, cancellationToken);

        public Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken) => inner.ExistsAsync(name, cancellationToken);

        public IAsyncEnumerable<StoredObject> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);
    }
}
