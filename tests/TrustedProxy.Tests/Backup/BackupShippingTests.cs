using System.Diagnostics.Metrics;
using System.Security.Cryptography;
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
/// The backup on the production release loop, on virtual time: generations ship only in dummy
/// slots (the cloud sees the very same puts, times and sizes, with the backup on or off), fall
/// behind when no dummy slot is free, survive a restart, and restore with only the key.
/// </summary>
public sealed class BackupShippingTests : IDisposable
{
    private const int BlockSize = 4096;
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly TemporaryDirectory _directory = new();
    private readonly ProxyKeyRing _keyRing = ProxyKeyRing.FromBytes(SHA256.HashData("backup shipping tests"u8));
    private readonly ServiceProvider _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();

    private static UploadCacheOptions Options => new()
    {
        BlockSizeBytes = BlockSize,
        SlotsPerSecond = 10,
        PoolThreshold = 20,
        MaxHoldSeconds = 3600,
        AlarmAfterSeconds = 7200,
    };

    private static BackupOptions Backup => new() { Enabled = true, IntervalSeconds = 600, LagAlarmSeconds = 120 };

    [Fact]
    public async Task BackupObjects_GoOutOnlyInDummySlots_TheCloudSeesTheSamePutTimesAndSizes_WithTheBackupOnOrOff()
    {
        var off = await RunAsync(Path.Combine(_directory.Path, "off"), backupOn: false);
        var on = await RunAsync(Path.Combine(_directory.Path, "on"), backupOn: true);

        Assert.True(off.Puts.Count > 500, $"only {off.Puts.Count} puts");
        Assert.Equal(off.Puts.Select(p => (p.At, p.Length)), on.Puts.Select(p => (p.At, p.Length)));
        Assert.All(on.Puts, p => Assert.Equal(BlockSize, p.Length));

        // The backup's objects took dummy slots: the real blocks went out in the same slots as without it.
        using var keys = BackupKeys.From(_keyRing);
        var backupNames = Enumerable.Range(0, (int)on.Objects - 1).Select(i => keys.NameOf(0, (ulong)i)).Append(keys.ManifestNameOf(0)).ToHashSet();
        Assert.Equal(backupNames.Count, on.Puts.Count(p => backupNames.Contains(p.Name)));
        Assert.Equal(off.RealSlots, on.RealSlots);
        Assert.Equal(0, on.Status.ObjectsWaiting);
        Assert.Equal(0, on.Status.NewestComplete);
    }

    [Fact]
    public async Task ACompleteGeneration_IsFoundWithOnlyTheKey_AndRestoresTheIndexAndTheWaitingCiphertextBitExact()
    {
        var directory = Path.Combine(_directory.Path, "site");
        var run = await RunAsync(directory, backupOn: true);
        var store = new FileSystemObjectStore(Path.Combine(directory, "cloud"));
        using var keys = BackupKeys.From(ProxyKeyRing.FromBytes(SHA256.HashData("backup shipping tests"u8)));
        var restorer = new BackupRestorer(store, keys, new BackupObjectSealer(keys, BlockSize));

        var found = await restorer.FindNewestCompleteAsync(CancellationToken.None);

        Assert.NotNull(found);
        Assert.Equal(0, found.Generation);
        Assert.Equal(3, found.Manifest.Records);
        Assert.Equal(6, found.Manifest.WaitingBlocks);
        var target = Path.Combine(_directory.Path, "restored");
        var entries = await restorer.RestoreAsync(found, Path.Combine(target, "data"), Path.Combine(target, "certs"), Path.Combine(target, "work"), CancellationToken.None);
        Assert.Equal(found.Manifest.Entries, entries.Count);
        Assert.Equal(3, run.Staged.Count);
        Assert.Equal(3, Directory.GetFiles(Path.Combine(target, "data", "staging"), "*.tpx").Length);
        foreach (var (name, bytes) in run.Staged)
        {
            Assert.Equal(bytes, await File.ReadAllBytesAsync(Path.Combine(target, "data", "staging", name)));
        }

        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(directory, "audit", "audit.log")), await File.ReadAllBytesAsync(Path.Combine(target, "data", "audit", "audit.log")));
        Assert.Equal("not really a CA", await File.ReadAllTextAsync(Path.Combine(target, "certs", "ca", "ca.crt.pem")));
        Assert.False(File.Exists(Path.Combine(target, "data", "keys", "master.key")));
    }

    [Fact]
    public async Task AFlippedByte_SwappedObjects_OrAMissingObject_AreRefused_AndWithoutItsManifestAGenerationIsNotFound()
    {
        var directory = Path.Combine(_directory.Path, "site");
        await RunAsync(directory, backupOn: true);
        var cloud = Path.Combine(directory, "cloud");
        using var keys = BackupKeys.From(_keyRing);
        var restorer = new BackupRestorer(new FileSystemObjectStore(cloud), keys, new BackupObjectSealer(keys, BlockSize));
        var found = (await restorer.FindNewestCompleteAsync(CancellationToken.None))!;
        string ObjectFile(ulong sequence) => Path.Combine(cloud, keys.NameOf(0, sequence).ToString());
        async Task<string> RefusedAsync()
        {
            var target = Path.Combine(_directory.Path, "restore-" + Guid.NewGuid().ToString("N"));
            var error = await Assert.ThrowsAsync<BackupIntegrityException>(() => restorer.RestoreAsync(found, Path.Combine(target, "data"), Path.Combine(target, "certs"), Path.Combine(target, "work"), CancellationToken.None));
            return error.Message;
        }

        var original = await File.ReadAllBytesAsync(ObjectFile(1));
        var flipped = original.ToArray();
        flipped[100] ^= 0x08;
        await File.WriteAllBytesAsync(ObjectFile(1), flipped);
        Assert.Contains("0/1 fails its authentication", await RefusedAsync());
        await File.WriteAllBytesAsync(ObjectFile(1), original);

        var zero = await File.ReadAllBytesAsync(ObjectFile(0));
        await File.WriteAllBytesAsync(ObjectFile(0), original);
        await File.WriteAllBytesAsync(ObjectFile(1), zero);
        Assert.Contains("0/0 fails its authentication", await RefusedAsync());
        await File.WriteAllBytesAsync(ObjectFile(0), zero);
        await File.WriteAllBytesAsync(ObjectFile(1), original);

        File.Move(ObjectFile(2), ObjectFile(2) + ".aside");
        Assert.Contains("0/2 is missing", await RefusedAsync());
        File.Move(ObjectFile(2) + ".aside", ObjectFile(2));

        File.Delete(Path.Combine(cloud, keys.ManifestNameOf(0).ToString()));
        Assert.Null(await restorer.FindNewestCompleteAsync(CancellationToken.None));
    }

    [Fact]
    public async Task WhenEverySlotCarriesARealBlock_TheBackupFallsBehind_ItsLagRaisesTheAlarm_AndItCatchesUpInLaterDummySlots()
    {
        var directory = Path.Combine(_directory.Path, "busy");
        var time = new FakeTimeProvider(Start);
        Prepare(directory);
        using var shipper = Shipper(directory, time);
        using var rig = await EngineRig.OpenAsync(directory, Options with { PoolThreshold = 1 }, time, seed: 7, cover: shipper);
        await rig.AdmitRecordAsync(2000);
        Assert.NotNull(await shipper.StageIfDueAsync(CancellationToken.None));
        var objects = shipper.Status().ObjectsWaiting;

        await rig.RunForAsync(TimeSpan.FromSeconds(150));

        var busy = shipper.Status();
        Assert.Equal(objects, busy.ObjectsWaiting);
        Assert.Null(busy.NewestComplete);
        Assert.True(busy.LagSeconds >= 150);
        Assert.True(busy.Alarm);
        Assert.True(rig.Engine.Snapshot().WaitingBlocks > 0);

        await rig.RunForAsync(TimeSpan.FromSeconds(600));

        var caughtUp = shipper.Status();
        Assert.Equal(0, rig.Engine.Snapshot().WaitingBlocks);
        Assert.Equal(0, caughtUp.ObjectsWaiting);
        Assert.Equal(0, caughtUp.NewestComplete);
        Assert.Equal(Start, caughtUp.BackupPoint);
    }

    [Fact]
    public async Task ShippedProgress_SurvivesARestart_TheGenerationGoesOnFromItsNextObject_AndTheNextStartsAfterTheInterval()
    {
        var directory = Path.Combine(_directory.Path, "restart");
        var time = new FakeTimeProvider(Start);
        Prepare(directory);
        long objects;
        using (var shipper = Shipper(directory, time))
        using (var rig = await EngineRig.OpenAsync(directory, Options, time, seed: 3, cover: shipper))
        {
            await rig.AdmitRecordAsync(2);
            await shipper.StageIfDueAsync(CancellationToken.None);
            objects = shipper.Status().ObjectsWaiting;
            await rig.RunForAsync(TimeSpan.FromSeconds(1));
            Assert.InRange(shipper.Status().ObjectsWaiting, 1, objects - 1);
        }

        using (var shipper = Shipper(directory, time))
        using (var rig = await EngineRig.OpenAsync(directory, Options, time, seed: 4, cover: shipper))
        {
            var resumed = shipper.Status();
            Assert.Equal(0, resumed.Shipping);
            Assert.InRange(resumed.ObjectsWaiting, 1, objects - 1);
            Assert.Null(await shipper.StageIfDueAsync(CancellationToken.None));
            await rig.RunForAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(0, shipper.Status().NewestComplete);

            Assert.False(shipper.Due());
            time.Advance(TimeSpan.FromSeconds(Backup.IntervalSeconds));
            Assert.Equal(1, await shipper.StageIfDueAsync(CancellationToken.None));
            await rig.RunForAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(1, shipper.Status().NewestComplete);
        }

        using var keys = BackupKeys.From(_keyRing);
        var found = await new BackupRestorer(new FileSystemObjectStore(Path.Combine(directory, "cloud")), keys, new BackupObjectSealer(keys, BlockSize)).FindNewestCompleteAsync(CancellationToken.None);
        Assert.Equal(1, found!.Generation);
        var target = Path.Combine(_directory.Path, "restored");
        var restorer = new BackupRestorer(new FileSystemObjectStore(Path.Combine(directory, "cloud")), keys, new BackupObjectSealer(keys, BlockSize));
        var entries = await restorer.RestoreAsync(found, Path.Combine(target, "data"), Path.Combine(target, "certs"), Path.Combine(target, "work"), CancellationToken.None);
        Assert.Equal(found.Manifest.Entries, entries.Count);
    }

    private async Task<(List<(DateTimeOffset At, long Length, ObjectName Name)> Puts, long RealSlots, long Objects, BackupStatus Status, Dictionary<string, byte[]> Staged)> RunAsync(string directory, bool backupOn)
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

        // The waiting ciphertext as it was when the snapshot was taken (released blocks' files go later).
        var staged = Directory.GetFiles(Path.Combine(directory, "staging"), "*.tpx").ToDictionary(f => Path.GetFileName(f), f => File.ReadAllBytes(f));
        long objects = 0;
        if (backupOn)
        {
            await shipper.StageIfDueAsync(CancellationToken.None);
            objects = shipper.Status().ObjectsWaiting;
            Assert.True(objects > 3, $"only {objects} backup objects");
        }

        await rig.RunForAsync(TimeSpan.FromSeconds(60));
        return (recording!.Puts.ToList(), rig.Engine.Snapshot().ReleasedBlocks, objects, shipper.Status(), staged);
    }

    // The parts of a data directory the engine rig does not make: an audit log, a certificates directory.
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

    /// <summary>Every put the cloud saw: when, how long, under which name.</summary>
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
