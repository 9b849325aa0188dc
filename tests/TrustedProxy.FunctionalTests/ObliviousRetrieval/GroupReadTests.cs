using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.FunctionalTests.UploadCache;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.FunctionalTests.ObliviousRetrieval;

/// <summary>Reads from the cloud, as the cloud sees them: whole retrieval groups, and a record read once moves to objects nobody has read.</summary>
public sealed class GroupReadTests
{
    private const string Log = "data/observed.csv";

    private static Dictionary<string, string?> Settings => new(UploadCacheTests.Fast) { ["TrustedProxy:Storage:ObservationLog"] = Log };

    private static Dictionary<string, string?> ConstantRate => new(Settings)
    {
        ["TrustedProxy:ObliviousRetrieval:Schedule"] = "constant-rate",
        ["TrustedProxy:ObliviousRetrieval:ReadsPerSecond"] = "10",
        ["TrustedProxy:ObliviousRetrieval:GroupSize"] = "4",
    };

    [Fact]
    public async Task AReadFromTheCloud_ReadsEveryMemberOfEachBlocksGroup_AllOneSize()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: Settings);
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

        // Relocated: it waits in the upload cache again, and a read meanwhile touches the cloud not at all.
        Assert.Equal(RecordState.Cached, (await index.FindAsync(handles[1]))!.State);
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
    public async Task UnderTheConstantRateSchedule_AnIdleProxy_ReadsWholeGroupsAtItsRate_WithNobodyAsking()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: ConstantRate);
        await UploadAsync(proxy, 6);
        await UploadCacheTests.WaitUntilReleasedAsync(proxy);
        var start = Gets(proxy).Count;

        await Task.Delay(TimeSpan.FromSeconds(4));

        var runs = Runs(Gets(proxy).Skip(start).Select(g => g.Name), await GroupsByNameAsync(proxy));
        Assert.InRange(runs.Count, 15, 80);
        MostlyWholeGroups(runs);
    }

    [Fact]
    public async Task UnderTheConstantRateSchedule_AFetch_IsServedByReadsOfItsGroupsInTheSlots_BitExact()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: ConstantRate);
        var (handles, files) = await UploadAsync(proxy, 6);
        await UploadCacheTests.WaitUntilReleasedAsync(proxy);
        var wanted = await proxy.Services.GetRequiredService<BlockIndex>().OfRecordAsync(handles[4]);
        var start = Gets(proxy).Count;

        using var back = new MemoryStream();
        await proxy.Client(ProxyRole.Consumer).FetchAsync(handles[4], back);

        Assert.Equal(files[4], back.ToArray());
        var runs = Runs(Gets(proxy).Skip(start).Select(g => g.Name), await GroupsByNameAsync(proxy));
        Assert.Superset(wanted.Select(b => b.GroupId!.Value).ToHashSet(), runs.Where(r => r.Complete).Select(r => r.Group).ToHashSet());
        MostlyWholeGroups(runs);
    }

    // Groups still filling when read, and the runs the window cuts, are the only partial ones.
    private static void MostlyWholeGroups(List<(long Group, int Names, bool Complete)> runs) =>
        Assert.True(runs.Count(r => r.Complete) >= 0.8 * runs.Count, $"{runs.Count(r => !r.Complete)} of {runs.Count} group reads were partial");

    private static async Task<Dictionary<string, long>> GroupsByNameAsync(ProxyHost proxy)
    {
        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        var (last, _) = await blocks.LastGroupAsync();
        var members = await blocks.GroupMembersAsync(Enumerable.Range(0, (int)last + 1).Select(g => (long)g).ToList());
        return members.ToDictionary(m => m.ObjectName.ToString(), m => m.GroupId!.Value);
    }

    // Splits a read log into runs of one group each (a group read twice in a row is one run), and
    // says whether a run read every member its group has now.
    private static List<(long Group, int Names, bool Complete)> Runs(IEnumerable<string> gets, Dictionary<string, long> groupOf)
    {
        var runs = new List<(long Group, HashSet<string> Names)>();
        foreach (var name in gets)
        {
            Assert.True(groupOf.TryGetValue(name, out var group), $"{name} was read but belongs to no group");
            if (runs.Count == 0 || runs[^1].Group != group)
            {
                runs.Add((group, []));
            }

            runs[^1].Names.Add(name);
        }

        return runs.Select(r => (r.Group, r.Names.Count, r.Names.Count == groupOf.Count(m => m.Value == r.Group))).ToList();
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
