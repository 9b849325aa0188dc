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
