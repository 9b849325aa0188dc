using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Policy;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.FunctionalTests.UploadCache;

/// <summary>
/// The real server's own record of what the cloud sees (TrustedProxy:Storage:ObservationLog), read
/// the way the curious-cloud harness reads it: write-through gives the uploads away, the cache does not.
/// </summary>
public sealed class ObservationLogTests
{
    private const string Log = "data/observed.csv";

    [Fact]
    public async Task WriteThrough_TheFirstWriteAfterEachUpload_IsThatUpload()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?> { ["TrustedProxy:Storage:ObservationLog"] = Log });
        var uploads = await UploadAsync(proxy, 10);

        var puts = Puts(proxy);
        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        foreach (var (handle, startedAt) in uploads)
        {
            var first = puts.First(p => p.At >= startedAt);
            Assert.Contains(first.Name, (await blocks.OfRecordAsync(handle)).Select(b => b.ObjectName.ToString()));
        }
    }

    [Fact]
    public async Task WithTheCache_WritesKeepTheirRateThroughABurst_AllOneSize_AndEachBlockIsWrittenOnce()
    {
        var settings = new Dictionary<string, string?>(UploadCacheTests.Fast) { ["TrustedProxy:Storage:ObservationLog"] = Log, ["TrustedProxy:UploadCache:SlotsPerSecond"] = "20" };
        await using var proxy = await ProxyHost.StartAsync(settings: settings);
        await Task.Delay(TimeSpan.FromSeconds(3));
        var burstStart = DateTimeOffset.UtcNow;
        var uploads = await UploadAsync(proxy, 15);
        var burstEnd = DateTimeOffset.UtcNow;
        await UploadCacheTests.WaitUntilReleasedAsync(proxy);

        var puts = Puts(proxy);
        Assert.All(puts, p => Assert.Equal(UploadCacheTests.BlockSize, p.Length));

        // 20 slots/s whatever arrives: as many writes per second during the burst as in the quiet seconds before it.
        double Rate(DateTimeOffset from, DateTimeOffset to) => puts.Count(p => p.At >= from && p.At < to) / (to - from).TotalSeconds;
        var quiet = Rate(burstStart.AddSeconds(-2.5), burstStart);
        var during = Rate(burstStart, burstEnd.AddSeconds(1));
        Assert.InRange(quiet, 8, 35);
        Assert.InRange(during, 8, 35);

        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        foreach (var (handle, _) in uploads)
        {
            foreach (var block in await blocks.OfRecordAsync(handle))
            {
                Assert.Single(puts, p => p.Name == block.ObjectName.ToString());
            }
        }
    }

    private static async Task<List<(string Handle, DateTimeOffset StartedAt)>> UploadAsync(ProxyHost proxy, int count)
    {
        var uploads = new List<(string, DateTimeOffset)>();
        for (var i = 0; i < count; i++)
        {
            var file = new DicomFileBuilder().Patient($"OBS{i}", "Observed^Patient").PixelData(50_000 + 40_000 * i, seed: i).Build();
            var startedAt = DateTimeOffset.UtcNow;
            uploads.Add(((await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file))).Handle, startedAt));
        }

        return uploads;
    }

    private static List<CloudObservation> Puts(ProxyHost proxy)
    {
        // The sink flushes per line; read a copy so the proxy may go on appending.
        var copy = Path.Combine(proxy.Root, "observed-copy.csv");
        File.Copy(Path.Combine(proxy.Root, Log), copy, overwrite: true);
        return CsvObservationSink.Read(copy).Where(o => o.Operation == "put").ToList();
    }
}
