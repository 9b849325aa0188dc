using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.FunctionalTests.Records;

/// <summary>A cloud that alters what it stores is caught: the fetch fails with a clear integrity error and never returns wrong bytes.</summary>
public sealed class TamperTests : ProxyTest
{
    private const int BlockSize = 1024 * 1024;

    // Blocks larger than the test files, so that most tests work on a record's only object.
    protected override Task<ProxyHost> StartProxyAsync() =>
        ProxyHost.StartAsync(settings: new Dictionary<string, string?> { ["TrustedProxy:UploadCache:BlockSizeBytes"] = BlockSize.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    [Fact]
    public async Task TwoBlocksOfARecordSwapped_FailTheFetch()
    {
        var (handle, names) = await UploadBlocksAsync(BlockSize * 5 / 2);
        Assert.Equal(3, names.Count);
        var first = await Proxy.ReadCloudObjectAsync(names[0]);
        var second = await Proxy.ReadCloudObjectAsync(names[1]);
        await Proxy.OverwriteCloudObjectAsync(names[0], second);
        await Proxy.OverwriteCloudObjectAsync(names[1], first);

        await AssertIntegrityFailure(handle);
    }

    [Fact]
    public async Task ABlockOfAnotherRecord_FailsTheFetch()
    {
        var (handle, names) = await UploadBlocksAsync(BlockSize * 3 / 2);
        var (_, otherNames) = await UploadBlocksAsync(BlockSize * 3 / 2);
        await Proxy.OverwriteCloudObjectAsync(names[1], await Proxy.ReadCloudObjectAsync(otherNames[1]));

        await AssertIntegrityFailure(handle);
    }
    [Fact]
    public async Task OneFlippedByte_FailsTheFetch()
    {
        var (handle, name) = await UploadAsync(300_000);
        var bytes = await Proxy.ReadCloudObjectAsync(name);
        bytes[150_000] ^= 0x20;
        await Proxy.OverwriteCloudObjectAsync(name, bytes);

        await AssertIntegrityFailure(handle);
    }

    [Fact]
    public async Task ARemovedSegment_FailsTheFetch()
    {
        var (handle, name) = await UploadAsync(300_000);
        var bytes = await Proxy.ReadCloudObjectAsync(name);
        const int sealedSegment = 64 * 1024 + 16;
        var cut = bytes[..(32 + sealedSegment)].Concat(bytes[(32 + 2 * sealedSegment)..]).ToArray();
        await Proxy.OverwriteCloudObjectAsync(name, cut);

        await AssertIntegrityFailure(handle);
    }

    [Fact]
    public async Task ATruncatedObject_FailsTheFetch_EvenWhereOnlyPaddingIsCut()
    {
        var (handle, name) = await UploadAsync(300_000);
        var bytes = await Proxy.ReadCloudObjectAsync(name);
        await Proxy.OverwriteCloudObjectAsync(name, bytes[..^100]);

        await AssertIntegrityFailure(handle);
    }

    [Fact]
    public async Task TwoSwappedObjects_FailBothFetches()
    {
        var (first, firstName) = await UploadAsync(1000);
        var (second, secondName) = await UploadAsync(1000);
        var firstBytes = await Proxy.ReadCloudObjectAsync(firstName);
        var secondBytes = await Proxy.ReadCloudObjectAsync(secondName);
        Assert.Equal(firstBytes.Length, secondBytes.Length);
        await Proxy.OverwriteCloudObjectAsync(firstName, secondBytes);
        await Proxy.OverwriteCloudObjectAsync(secondName, firstBytes);

        await AssertIntegrityFailure(first);
        await AssertIntegrityFailure(second);
    }

    [Fact]
    public async Task AnObjectGoneFromTheCloud_IsReportedAsMissing()
    {
        var (handle, name) = await UploadAsync(1000);
        await Proxy.Store.DeleteAsync(name, CancellationToken.None);

        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(ProxyRole.Consumer).FetchAsync(handle, Stream.Null));

        Assert.Equal(502, error.Status);
        Assert.Equal("urn:trustedproxy:problem:object-missing", error.ProblemType);
    }

    private async Task<(string Handle, IReadOnlyList<ObjectName> Names)> UploadBlocksAsync(int pixelBytes)
    {
        var result = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().PixelData(pixelBytes, seed: Random.Shared.Next()).Build()));
        var blocks = await Proxy.Services.GetRequiredService<BlockIndex>().OfRecordAsync(result.Handle);
        return (result.Handle, blocks.Select(b => b.ObjectName).ToList());
    }

    private async Task<(string Handle, ObjectName Name)> UploadAsync(int pixelBytes)
    {
        var before = (await Proxy.CloudObjectsAsync()).Select(o => o.Name).ToHashSet();
        var result = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().PixelData(pixelBytes, seed: Random.Shared.Next()).Build()));
        var name = (await Proxy.CloudObjectsAsync()).Select(o => o.Name).Single(n => !before.Contains(n));
        return (result.Handle, name);
    }

    private async Task AssertIntegrityFailure(string handle)
    {
        using var received = new MemoryStream();

        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => Proxy.Client(ProxyRole.Consumer).FetchAsync(handle, received));

        Assert.Equal(502, error.Status);
        Assert.Equal("urn:trustedproxy:problem:integrity-failure", error.ProblemType);
        Assert.Equal(0, received.Length);
    }
}
