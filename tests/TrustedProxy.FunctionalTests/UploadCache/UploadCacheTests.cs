using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.UploadCache;

namespace TrustedProxy.FunctionalTests.UploadCache;

/// <summary>The randomized upload cache on a real proxy: acknowledged from local disk, served from there, released on its schedule in fixed-size blocks mixed with dummies.</summary>
public sealed class UploadCacheTests
{
    internal const int BlockSize = 64 * 1024;

    /// <summary>A schedule that releases within seconds: tens of writes per second, a small pool, max hold 5 s.</summary>
    internal static Dictionary<string, string?> Fast => new()
    {
        ["TrustedProxy:UploadCache:Enabled"] = "true",
        ["TrustedProxy:UploadCache:BlockSizeBytes"] = BlockSize.ToString(CultureInfo.InvariantCulture),
        ["TrustedProxy:UploadCache:SlotsPerSecond"] = "40",
        ["TrustedProxy:UploadCache:PoolThreshold"] = "20",
        ["TrustedProxy:UploadCache:MeanHoldSeconds"] = "1",
        ["TrustedProxy:UploadCache:MaxHoldSeconds"] = "5",
        ["TrustedProxy:UploadCache:MeanDeleteDelaySeconds"] = "1",
        ["TrustedProxy:UploadCache:AlarmAfterSeconds"] = "600",
        ["TrustedProxy:UploadCache:RetryBaseSeconds"] = "0.2",
        ["TrustedProxy:UploadCache:RetryMaxSeconds"] = "1",
        ["TrustedProxy:ObliviousRetrieval:RelocationHoldSeconds"] = "1",
    };

    /// <summary>A schedule that, for the length of a test, releases nothing (one slot per ~3 hours, almost never a real block).</summary>
    internal static Dictionary<string, string?> Held => new(Fast)
    {
        ["TrustedProxy:UploadCache:SlotsPerSecond"] = "0.0001",
        ["TrustedProxy:UploadCache:PoolThreshold"] = "1000000",
        ["TrustedProxy:UploadCache:MaxHoldSeconds"] = "86400",
        ["TrustedProxy:UploadCache:AlarmAfterSeconds"] = "172800",
    };

    [Fact]
    public async Task AnUpload_IsAcknowledgedFromTheLocalCache_BeforeTheCloudSeesAnything_AndIsServedFromThere()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: Held);
        var files = Enumerable.Range(0, 3).Select(i => new DicomFileBuilder().Patient($"HELD{i}", "Held^Patient").PixelData(150_000 * (i + 1), seed: i).Build()).ToList();

        var handles = new List<string>();
        foreach (var file in files)
        {
            handles.Add((await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file))).Handle);
        }

        Assert.Empty(await proxy.CloudObjectsAsync());
        for (var i = 0; i < files.Count; i++)
        {
            using var back = new MemoryStream();
            await proxy.Client(ProxyRole.Consumer).FetchAsync(handles[i], back);
            Assert.True(files[i].AsSpan().SequenceEqual(back.ToArray()));
        }

        Assert.Equal(3, (await proxy.Client(ProxyRole.Consumer).SearchAsync(new RecordSearch())).Items.Count);
        var blocks = 0;
        foreach (var handle in handles)
        {
            blocks += (await proxy.Services.GetRequiredService<BlockIndex>().OfRecordAsync(handle)).Count;
        }

        Assert.Equal(3 + 5 + 7, blocks);
        var cache = await HealthOfCacheAsync(proxy);
        Assert.Equal(blocks, cache.GetProperty("data").GetProperty("waitingBlocks").GetInt32());
    }

    [Fact]
    public async Task CachedRecords_ReachTheCloud_AsFixedSizeBlocks_MixedWithDummies_AndComeBackBitExact()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: Fast);
        var files = Enumerable.Range(0, 12).Select(i => new DicomFileBuilder().Patient($"REL{i}", "Released^Patient").PixelData(10_000 + 37_000 * i, seed: i).Build()).ToList();
        var handles = new List<string>();
        foreach (var file in files)
        {
            handles.Add((await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file))).Handle);
        }

        await WaitUntilReleasedAsync(proxy);

        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        var real = new List<CacheBlock>();
        foreach (var handle in handles)
        {
            real.AddRange(await blocks.OfRecordAsync(handle));
        }

        var cloud = (await proxy.CloudObjectsAsync()).ToDictionary(o => o.Name);
        Assert.All(cloud.Values, o => Assert.Equal(BlockSize, o.Length));
        Assert.All(real, b => Assert.True(cloud.ContainsKey(b.ObjectName), $"block {b.BlockIndex} of {b.Handle} is not in the cloud"));
        // Dummies keep coming while the test looks: every object not a block of ours must be a dummy the proxy knows.
        var dummies = (await blocks.InStateAsync(BlockState.Released, BlockKind.Dummy)).Concat(await blocks.InStateAsync(BlockState.Cached, BlockKind.Dummy)).Select(b => b.ObjectName).ToHashSet();
        Assert.NotEmpty(dummies);
        var realNames = real.Select(b => b.ObjectName).ToHashSet();
        Assert.All(cloud.Keys, name => Assert.True(realNames.Contains(name) || dummies.Contains(name), $"{name} is neither a block nor a dummy"));

        Assert.Empty(Directory.GetFiles(Path.Combine(proxy.Root, "data", "staging"), "*.tpx"));
        for (var i = 0; i < files.Count; i++)
        {
            Assert.Equal(RecordState.Stored, (await proxy.Services.GetRequiredService<RecordIndex>().FindAsync(handles[i]))!.State);
            using var back = new MemoryStream();
            await proxy.Client(ProxyRole.Consumer).FetchAsync(handles[i], back);
            Assert.True(files[i].AsSpan().SequenceEqual(back.ToArray()), $"record {i} came back different");
        }
    }

    [Fact]
    public async Task WaitingRecords_SurviveARestart_AndAreReleasedAfterIt()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: Held);
        var file = new DicomFileBuilder().Patient("RESTART1", "Restart^Patient").PixelData(200_000).Build();
        var handle = (await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file))).Handle;
        await proxy.StopAsync();

        await proxy.StartAgainAsync(Fast);
        await WaitUntilReleasedAsync(proxy);

        Assert.Equal(RecordState.Stored, (await proxy.Services.GetRequiredService<RecordIndex>().FindAsync(handle))!.State);
        using var back = new MemoryStream();
        await proxy.Client(ProxyRole.Consumer).FetchAsync(handle, back);
        Assert.True(file.AsSpan().SequenceEqual(back.ToArray()));
    }

    [Fact]
    public async Task ARecordDeletedWhileCached_NeverReachesTheCloud()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: Held);
        var handle = (await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().PixelData(300_000).Build()))).Handle;
        var names = (await proxy.Services.GetRequiredService<BlockIndex>().OfRecordAsync(handle)).Select(b => b.ObjectName).ToList();

        await proxy.Client(ProxyRole.Admin).DeleteAsync(handle);
        await proxy.StopAsync();
        await proxy.StartAgainAsync(Fast);

        // The schedule has run (the cloud holds its first objects) and nothing waits any more.
        await FileEvents.WaitUntilAsync(
            Path.Combine(proxy.Root, "data"),
            async () => (await proxy.CloudObjectsAsync()).Count > 0,
            TimeSpan.FromSeconds(60),
            () => "no object reached the cloud in 60 s");
        await WaitUntilReleasedAsync(proxy);

        var cloud = (await proxy.CloudObjectsAsync()).Select(o => o.Name).ToHashSet();
        Assert.NotEmpty(cloud);
        Assert.DoesNotContain(names, cloud.Contains);
        Assert.Empty(Directory.GetFiles(Path.Combine(proxy.Root, "data", "staging"), "*.tpx"));
    }

    [Fact]
    public async Task ADeletedRecord_IsCryptoErased_AndItsObjectsStayInTheCloudAsDecoys_ForADeleteWouldMarkThemReal()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>(Fast) { ["TrustedProxy:UploadCache:MeanDeleteDelaySeconds"] = "0.1" });
        var handle = (await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().PixelData(300_000).Build()))).Handle;
        await WaitUntilReleasedAsync(proxy);
        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        var ids = (await blocks.OfRecordAsync(handle)).Select(b => b.Id).ToList();
        Assert.Equal(5, ids.Count);

        await proxy.Client(ProxyRole.Admin).DeleteAsync(handle);

        Assert.Equal(404, (await Assert.ThrowsAsync<TrustedProxyException>(() => proxy.Client(ProxyRole.Consumer).GetAsync(handle))).Status);
        Assert.Null(await proxy.Services.GetRequiredService<RecordIndex>().FindAsync(handle));
        var decoys = new List<CacheBlock>();
        foreach (var id in ids)
        {
            decoys.Add((await blocks.FindAsync(id))!);
        }

        Assert.All(decoys, b => Assert.Equal((BlockKind.Retired, BlockState.Released, (string?)null), (b.Kind, b.State, b.Handle)));

        // Still in the cloud, and never due for deletion: no sweep, however late, will remove them.
        var cloud = (await proxy.CloudObjectsAsync()).Select(o => o.Name).ToHashSet();
        Assert.All(decoys, b => Assert.Contains(b.ObjectName, cloud));
        var due = (await blocks.DueForDeletionAsync(DateTimeOffset.MaxValue.AddDays(-1), 100_000)).Select(b => b.Id).ToHashSet();
        Assert.DoesNotContain(ids, due.Contains);
        Assert.Equal(0, (await HealthOfCacheAsync(proxy)).GetProperty("data").GetProperty("deletedBlocks").GetInt64());
    }

    [Fact]
    public async Task WithErasure_ADeletedRecord_LeavesTheCloudLater_NotAtTheMomentOfDeletion()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>(Fast) { ["TrustedProxy:UploadCache:MeanDeleteDelaySeconds"] = "2", ["TrustedProxy:UploadCache:EraseDeletedObjects"] = "true" });
        var handle = (await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().PixelData(300_000).Build()))).Handle;
        await WaitUntilReleasedAsync(proxy);
        var names = (await proxy.Services.GetRequiredService<BlockIndex>().OfRecordAsync(handle)).Select(b => b.ObjectName).ToList();
        Assert.Equal(5, names.Count);

        await proxy.Client(ProxyRole.Admin).DeleteAsync(handle);

        Assert.Equal(404, (await Assert.ThrowsAsync<TrustedProxyException>(() => proxy.Client(ProxyRole.Consumer).GetAsync(handle))).Status);
        // Deletions are swept at exponential intervals (mean 10 s) once their own time (mean 2 s, at
        // most 5) has come: looked at again each time the cloud directory changes (every slot writes
        // to it), up to 120 s (60 s went by without a sweep once in CI, e^-5.5; 120 s makes it e^-11.5).
        await FileEvents.WaitUntilAsync(
            Path.Combine(proxy.Root, "data", "cloud"),
            async () => !(await proxy.CloudObjectsAsync()).Any(o => names.Contains(o.Name)),
            TimeSpan.FromSeconds(120),
            () => "the deleted record's objects are still in the cloud after 120 s");
        Assert.DoesNotContain((await proxy.CloudObjectsAsync()).Select(o => o.Name), names.Contains);
    }

    [Fact]
    public async Task TheCache_PublishesQueueDepthReleasesAndDummies_AsMetrics()
    {
        var measurements = new List<(string Instrument, double Value, string? Kind)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "TrustedProxy.UploadCache")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i.Name, v, tags));
        listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i.Name, v, tags));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i.Name, v, tags));
        listener.Start();

        await using var proxy = await ProxyHost.StartAsync(settings: Fast);
        await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().PixelData(100_000).Build()));
        listener.RecordObservableInstruments();
        await WaitUntilReleasedAsync(proxy);

        // The fast schedule writes a dummy within a slot or two of the pool running dry.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && !HasDummyRelease())
        {
            await Task.Delay(50);
        }

        listener.RecordObservableInstruments();

        lock (measurements)
        {
            Assert.Contains(measurements, m => m.Instrument == "trustedproxy.upload_cache.waiting_blocks");
            Assert.Contains(measurements, m => m.Instrument == "trustedproxy.upload_cache.oldest_age");
            Assert.Contains(measurements, m => m.Instrument == "trustedproxy.upload_cache.releases" && m.Kind == "real");
            Assert.Contains(measurements, m => m.Instrument == "trustedproxy.upload_cache.releases" && m.Kind == "dummy");
        }

        bool HasDummyRelease()
        {
            lock (measurements)
            {
                return measurements.Any(m => m.Instrument == "trustedproxy.upload_cache.releases" && m.Kind == "dummy");
            }
        }

        void Record(string name, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? kind = null;
            foreach (var tag in tags)
            {
                kind = tag.Key == "kind" ? tag.Value as string : kind;
            }

            lock (measurements)
            {
                measurements.Add((name, value, kind));
            }
        }
    }

    internal static async Task WaitUntilReleasedAsync(ProxyHost proxy, TimeSpan? timeout = null)
    {
        var engine = proxy.Services.GetRequiredService<UploadCacheEngine>();
        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));

        // Nothing waits in the schedule, and the last release's index update has landed: no real
        // block is still marked cached (the pool is emptied before the put it takes a block for).
        while (engine.Snapshot().WaitingBlocks > 0 || (await blocks.InStateAsync(BlockState.Cached, BlockKind.Real)).Count > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{engine.Snapshot().WaitingBlocks} blocks still waiting");
            await Task.Delay(50);
        }
    }

    /// <summary>The upload cache's check as an administrator sees it: members get no figures.</summary>
    internal static async Task<JsonElement> HealthOfCacheAsync(ProxyHost proxy)
    {
        using var response = await proxy.Client(ProxyRole.Admin).SendAsync(new HttpRequestMessage(HttpMethod.Get, "healthz"));
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("checks").GetProperty("upload-cache").Clone();
    }
}
