using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.FunctionalTests.UploadCache;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.FunctionalTests.ObliviousRetrieval;

/// <summary>Reads from the cloud, as the cloud sees them: whole retrieval groups, streams read in the epochs of the read schedule, and a record read once moves to objects nobody has read.</summary>
public sealed class GroupReadTests
{
    private const string Log = "data/observed.csv";

    private static Dictionary<string, string?> Settings => new(UploadCacheTests.Fast) { ["TrustedProxy:Storage:ObservationLog"] = Log };

    /// <summary>The epoch schedule at a tenth of a second an epoch, its cover as declared for a site asking once a second for 100 KB.</summary>
    private static Dictionary<string, string?> Epochs => new(Settings)
    {
        ["TrustedProxy:ObliviousRetrieval:Schedule"] = "epochs",
        ["TrustedProxy:ObliviousRetrieval:EpochSeconds"] = "0.1",
        ["TrustedProxy:ObliviousRetrieval:DeclaredRetrievalsPerDay"] = "86400",
        ["TrustedProxy:ObliviousRetrieval:DeclaredRetrievalMegabytes"] = "0.1",
    };

    [Fact]
    public async Task WithGroupsOfFour_AReadFromTheCloud_ReadsEveryMemberOfEachBlocksGroup_AllOneSize()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>(Settings) { ["TrustedProxy:ObliviousRetrieval:GroupSize"] = "4" });
        var (handles, files) = await UploadAsync(proxy, 6);
        await UploadCacheTests.WaitUntilReleasedAsync(proxy);
        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        var wanted = await blocks.OfRecordAsync(handles[2]);
        var members = await blocks.GroupMembersAsync(wanted.Select(b => b.GroupId!.Value).ToHashSet());
        var before = Gets(proxy).Count;

        using var back = new MemoryStream();
        await proxy.Client(ProxyRole.Consumer).FetchAsync(handles[2], back);

        var gets = Gets(proxy).Skip(before).ToList();
        Assert.Equal(files[2], back.ToArray());
        Assert.Equal(members.Select(m => m.ObjectName.ToString()).Order(), gets.Select(g => g.Name).Order());
        Assert.True(gets.Count >= 2 * wanted.Count, $"{gets.Count} reads for {wanted.Count} wanted blocks");
        Assert.All(gets, g => Assert.Equal(UploadCacheTests.BlockSize, g.Length));
    }

    [Fact]
    public async Task ARecordReadFromTheCloud_MovesToFreshObjects_SoTheNextReadSharesNothingWithTheFirst()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: Settings);
        var (handles, files) = await UploadAsync(proxy, 4);
        await UploadCacheTests.WaitUntilReleasedAsync(proxy);
        var consumer = proxy.Client(ProxyRole.Consumer);
        var index = proxy.Services.GetRequiredService<RecordIndex>();

        var start = Gets(proxy).Count;
        await consumer.FetchAsync(handles[1], Stream.Null);
        var firstRead = Gets(proxy).Skip(start).Select(g => g.Name).ToHashSet();

        // Relocated (off the request path, soon after): it waits in the upload cache again, and a
        // read meanwhile touches the cloud not at all.
        await WaitUntilRelocatedAsync(proxy, handles[1]);
        var beforeHot = Gets(proxy).Count;
        using (var hot = new MemoryStream())
        {
            await consumer.FetchAsync(handles[1], hot);
            Assert.Equal(files[1], hot.ToArray());
        }

        Assert.Equal(beforeHot, Gets(proxy).Count);

        await UploadCacheTests.WaitUntilReleasedAsync(proxy);
        var again = Gets(proxy).Count;
        using var back = new MemoryStream();
        await consumer.FetchAsync(handles[1], back);
        var secondRead = Gets(proxy).Skip(again).Select(g => g.Name).ToHashSet();

        Assert.Equal(files[1], back.ToArray());
        Assert.NotEmpty(secondRead);
        Assert.Empty(firstRead.Intersect(secondRead));
    }

    [Fact]
    public async Task ARelocatedCopy_IsHeldBack_AndServedFromTheCache_BeforeTheScheduleMayReleaseIt()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>(Settings) { ["TrustedProxy:ObliviousRetrieval:RelocationHoldSeconds"] = "3600" });
        var (handles, files) = await UploadAsync(proxy, 3);
        await UploadCacheTests.WaitUntilReleasedAsync(proxy);
        var consumer = proxy.Client(ProxyRole.Consumer);
        await consumer.FetchAsync(handles[0], Stream.Null);
        await WaitUntilRelocatedAsync(proxy, handles[0]);
        var blocks = proxy.Services.GetRequiredService<BlockIndex>();

        // The fast schedule would release a waiting block within a second or two.
        await Task.Delay(TimeSpan.FromSeconds(3));

        var moved = await blocks.OfRecordAsync(handles[0]);
        Assert.All(moved, b => Assert.Equal(BlockState.Cached, b.State));
        Assert.All(moved, b => Assert.True(b.AdmittedAt > DateTimeOffset.UtcNow, "held until a random time within the hour"));
        Assert.True(proxy.Services.GetRequiredService<UploadCacheEngine>().Snapshot().WaitingBlocks >= moved.Count);
        var before = Gets(proxy).Count;
        using var back = new MemoryStream();
        await consumer.FetchAsync(handles[0], back);
        Assert.Equal(files[0], back.ToArray());
        Assert.Equal(before, Gets(proxy).Count);
    }

    [Fact]
    public async Task UnderTheEpochSchedule_AnIdleProxy_ReadsCoverStreams_OnlyAtTheTicksOfItsClock()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: Epochs);
        await UploadAsync(proxy, 6);
        await UploadCacheTests.WaitUntilReleasedAsync(proxy);
        var start = Gets(proxy).Count;

        // Cover at the declared rate (about one stream a second, a Poisson count: waiting a fixed
        // few seconds would see none now and then), with nobody asking.
        await FileEvents.WaitUntilAsync(
            Path.Combine(proxy.Root, "data"),
            () => Task.FromResult(Gets(proxy).Count - start >= 8),
            TimeSpan.FromSeconds(60),
            () => $"{Gets(proxy).Count - start} cover reads in 60 s");
        await Task.Delay(TimeSpan.FromSeconds(2));

        // Every read is of an object the cloud holds, and reads come in epochs (a few a tick), not one by one.
        var gets = Gets(proxy).Skip(start).ToList();
        var groupOf = await GroupsByNameAsync(proxy);
        Assert.InRange(gets.Count, 8, 4000);
        Assert.All(gets, g => Assert.True(groupOf.ContainsKey(g.Name), $"{g.Name} is not an object of the cloud"));
        Assert.True(gets.GroupBy(g => g.At.UtcTicks / TimeSpan.FromMilliseconds(100).Ticks).Count() <= gets.Count / 2, "reads come in bursts, an epoch's together");
    }

    [Fact]
    public async Task UnderTheEpochSchedule_AFetch_IsOneStreamOfASizeClass_BitExact()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>(Epochs) { ["TrustedProxy:ObliviousRetrieval:DeclaredRetrievalsPerDay"] = "0", ["TrustedProxy:ObliviousRetrieval:IdleFloorGigabytesPerDay"] = "0" });
        var (handles, files) = await UploadAsync(proxy, 12);
        await UploadCacheTests.WaitUntilReleasedAsync(proxy);
        var wanted = await proxy.Services.GetRequiredService<BlockIndex>().OfRecordAsync(handles[4]);
        var start = Gets(proxy).Count;

        using var back = new MemoryStream();
        await proxy.Client(ProxyRole.Consumer).FetchAsync(handles[4], back);

        // No cover is declared: what the cloud sees is the request's stream alone, its blocks
        // padded with neighbours up to a size class (8 objects times a power of two).
        Assert.Equal(files[4], back.ToArray());
        var gets = Gets(proxy).Skip(start).Select(g => g.Name).ToList();
        Assert.Superset(wanted.Select(b => b.ObjectName.ToString()).ToHashSet(), gets.ToHashSet());
        var read = gets.Distinct().Count();
        Assert.True(read >= 8 && read >= wanted.Count && (read & (read - 1)) == 0, $"{read} objects read for {wanted.Count} blocks");
    }

    [Fact]
    public async Task UnderTheEpochSchedule_AStudyOverWadoRs_IsOneStream_NotOnePerInstance_BitExact()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>(Epochs) { ["TrustedProxy:ObliviousRetrieval:DeclaredRetrievalsPerDay"] = "0", ["TrustedProxy:ObliviousRetrieval:IdleFloorGigabytesPerDay"] = "0" });
        var files = Enumerable.Range(0, 12).Select(i => new DicomFileBuilder().Patient("STREAM1", "Stream^Study").Study("1.2.826.0.1.77.1", "1.2.826.0.1.77.1.1", "20261206", "CT").PixelData(30_000 + (1_000 * i), seed: 60 + i).Build()).ToList();
        var (status, _) = await TrustedProxy.FunctionalTests.DicomWeb.DicomWebClient.StoreAsync(proxy.Client(ProxyRole.Producer), "dicomweb/studies", files);
        Assert.Equal(200, status);
        await UploadCacheTests.WaitUntilReleasedAsync(proxy);
        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        var wanted = 0;
        foreach (var handle in (await proxy.Services.GetRequiredService<RecordIndex>().SearchInstancesAsync(new RecordQuery { Limit = 100 })).Select(e => e.Handle))
        {
            wanted += (await blocks.OfRecordAsync(handle)).Count;
        }

        var start = Gets(proxy).Count;
        var (retrieved, parts) = await TrustedProxy.FunctionalTests.DicomWeb.DicomWebClient.RetrieveAsync(proxy.Client(ProxyRole.Consumer), "dicomweb/studies/1.2.826.0.1.77.1");

        // One stream padded to a size class: fewer than twice the blocks (a stream per instance
        // would read at least 8 objects for each of the 12).
        Assert.Equal(200, retrieved);
        Assert.Equal(files.Select(Convert.ToHexString).Order(), parts.Select(Convert.ToHexString).Order());
        var read = Gets(proxy).Skip(start).Select(g => g.Name).Distinct().Count();
        Assert.True(read >= wanted && read < 2 * wanted && read < 8 * files.Count, $"{read} objects read for {wanted} blocks of {files.Count} instances");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task UnderTheEpochSchedule_ARecordServedFromTheCache_StillStartsAStreamOfItsClass_UnlessSwitchedOff(bool streamForLocalReads)
    {
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>(Epochs)
        {
            ["TrustedProxy:ObliviousRetrieval:DeclaredRetrievalsPerDay"] = "0",
            ["TrustedProxy:ObliviousRetrieval:IdleFloorGigabytesPerDay"] = "0",
            ["TrustedProxy:ObliviousRetrieval:RelocationHoldSeconds"] = "3600",
            ["TrustedProxy:ObliviousRetrieval:StreamForLocalReads"] = streamForLocalReads ? "true" : "false",
        });
        var (handles, files) = await UploadAsync(proxy, 6);
        await UploadCacheTests.WaitUntilReleasedAsync(proxy);
        var consumer = proxy.Client(ProxyRole.Consumer);

        // Read once from the cloud: the record moves back to the cache, held there for up to an hour.
        await consumer.FetchAsync(handles[2], Stream.Null);
        await WaitUntilRelocatedAsync(proxy, handles[2]);
        var cloud = await GroupsByNameAsync(proxy);
        var before = Gets(proxy).Count;

        using var back = new MemoryStream();
        await consumer.FetchAsync(handles[2], back);
        Assert.Equal(files[2], back.ToArray());

        if (!streamForLocalReads)
        {
            // Nothing follows the request: no cover is declared, and the record came from the cache.
            await Task.Delay(TimeSpan.FromSeconds(1));
            Assert.Equal(before, Gets(proxy).Count);
            return;
        }

        // No cover is declared, so whatever is read now is the stream the local read started:
        // a size class's worth (8 × 2^k) of objects the cloud holds.
        await FileEvents.WaitUntilAsync(
            Path.Combine(proxy.Root, "data"),
            () => Task.FromResult(Gets(proxy).Count - before >= 8),
            TimeSpan.FromSeconds(30),
            () => $"{Gets(proxy).Count - before} objects read after a local read");
        await Task.Delay(TimeSpan.FromSeconds(1));
        var gets = Gets(proxy).Skip(before).Select(g => g.Name).ToList();
        var read = gets.Distinct().Count();
        Assert.Equal(gets.Count, read);
        Assert.True(read >= 8 && (read & (read - 1)) == 0, $"{read} objects read");
        Assert.All(gets, g => Assert.True(cloud.ContainsKey(g), $"{g} is not an object of the cloud"));
    }

    private static async Task<Dictionary<string, long>> GroupsByNameAsync(ProxyHost proxy)
    {
        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        var (last, _) = await blocks.LastGroupAsync();
        var members = await blocks.GroupMembersAsync(Enumerable.Range(0, (int)last + 1).Select(g => (long)g).ToList());
        return members.ToDictionary(m => m.ObjectName.ToString(), m => m.GroupId!.Value);
    }

    [Fact]
    public async Task ARelocationQueuedWhenTheProxyStopped_IsDoneAtTheNextStart_AndTheRecordIsServedFromItMeanwhile()
    {
        // Held at least 15 s, so that the cache file read below is still there on a loaded machine
        // (at 2 s it was once released before the third upload ended).
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>(Settings)
        {
            ["TrustedProxy:UploadCache:MinHoldSeconds"] = "15",
            ["TrustedProxy:UploadCache:MeanHoldSeconds"] = "16",
            ["TrustedProxy:UploadCache:MaxHoldSeconds"] = "20",
        });
        var (handles, files) = await UploadAsync(proxy, 3);
        var index = proxy.Services.GetRequiredService<RecordIndex>();

        // The record's stored form, as a read from the cloud hands it to the queue: its cache file before release.
        var stored = await File.ReadAllBytesAsync(Path.Combine(proxy.Root, "data", "staging", handles[1] + ".tpx"));
        await UploadCacheTests.WaitUntilReleasedAsync(proxy);
        var old = (await index.FindAsync(handles[1]))!;
        Assert.Equal(RecordState.Stored, old.State);
        var oldObjects = (await proxy.Services.GetRequiredService<BlockIndex>().OfRecordAsync(handles[1])).Select(b => b.ObjectName.ToString()).ToHashSet();

        // Stopped right after a read queued the relocation (the read was answered; the loop had not run).
        await proxy.StopAsync();
        var queued = Path.Combine(proxy.Root, "data", "staging", "relocations", $"{handles[1]}.{old.ObjectName}.tpx");
        await File.WriteAllBytesAsync(queued, stored);
        File.SetUnixFileMode(queued, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await proxy.StartAgainAsync();

        await WaitUntilRelocatedAsync(proxy, handles[1]);
        var moved = (await index.FindAsync(handles[1]))!;
        Assert.NotEqual(old.ObjectName, moved.ObjectName);
        Assert.False(File.Exists(queued));
        var before = Gets(proxy).Count;
        using var back = new MemoryStream();
        await proxy.Client(ProxyRole.Consumer).FetchAsync(handles[1], back);
        Assert.Equal(files[1], back.ToArray());

        // From the cache or (the fast schedule may have released the new copy already) its new objects: never the old ones.
        Assert.DoesNotContain(Gets(proxy).Skip(before), g => oldObjects.Contains(g.Name));
    }

    /// <summary>Until the relocation queue has moved the record to fresh ciphertext waiting in the upload cache.</summary>
    private static Task WaitUntilRelocatedAsync(ProxyHost proxy, string handle)
    {
        var index = proxy.Services.GetRequiredService<RecordIndex>();
        var queue = proxy.Services.GetRequiredService<TrustedProxy.ObliviousRetrieval.RelocationQueue>();
        RecordState? state = null;
        return FileEvents.WaitUntilAsync(
            Path.Combine(proxy.Root, "data", "staging"),
            async () => (state = (await index.FindAsync(handle))!.State) == RecordState.Cached && queue.Waiting == 0,
            TimeSpan.FromSeconds(30),
            () => $"record {handle} is {state} with {queue.Waiting} relocation(s) queued after 30 s");
    }

    private static async Task<(List<string> Handles, List<byte[]> Files)> UploadAsync(ProxyHost proxy, int count)
    {
        var handles = new List<string>();
        var files = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var file = new DicomFileBuilder().Patient($"GROUP{i}", "Group^Read").PixelData(70_000 + (30_000 * i), seed: 40 + i).Build();
            handles.Add((await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file))).Handle);
            files.Add(file);
        }

        return (handles, files);
    }

    private static List<CloudObservation> Gets(ProxyHost proxy)
    {
        var copy = Path.Combine(proxy.Root, "observed-copy.csv");
        File.Copy(Path.Combine(proxy.Root, Log), copy, overwrite: true);
        return CsvObservationSink.Read(copy).Where(o => o.Operation == "get").ToList();
    }
}
