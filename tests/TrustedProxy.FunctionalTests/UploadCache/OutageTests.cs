using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Client;
using TrustedProxy.Testing.Storage;
using TrustedProxy.Policy;
using TrustedProxy.UploadCache;

namespace TrustedProxy.FunctionalTests.UploadCache;

/// <summary>
/// The cloud goes away under load and comes back: the proxy keeps accepting, reports the backlog,
/// and delivers everything after. The verifying front drops every connection for the length of the
/// outage, as an unreachable S3 does; a PUT either landed whole or not at all. (Killing s3rver
/// instead can leave a half-written object whose broken ETag the SDK then cannot parse: an
/// emulator's failure, not one S3 has.)
/// </summary>
public sealed class OutageTests
{
    [Fact]
    public async Task ABackendOutageUnderLoad_LosesNothing_TheBacklogIsReported_AndAllIsDeliveredAfter()
    {
        // Through the verifying front: during the outage it drops each connection, as an unreachable
        // cloud would; before and after, every write is checked as AWS would check it.
        await using var front = await VerifyingS3Front.StartAsync();
        await using var proxy = await ProxyHost.StartAsync(front.Settings(), UploadCacheTests.Fast);
        var producer = proxy.Client(ProxyRole.Producer);
        var files = new Dictionary<string, byte[]>();
        async Task UploadAsync(int count, int seed)
        {
            for (var i = 0; i < count; i++)
            {
                var file = new DicomFileBuilder().Patient($"OUT{seed}-{i}", "Outage^Test").PixelData(20_000 + (7919 * i % 200_000), seed: seed * 1000 + i).Build();
                files.Add((await producer.UploadAsync(new MemoryStream(file))).Handle, file);
            }
        }

        await UploadAsync(10, 1);
        var firstError = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var meters = proxy.Services.GetRequiredService<IMeterFactory>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Scope == meters && instrument.Name == "trustedproxy.upload_cache.backend_errors")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, _, _, _) => firstError.TrySetResult());
        listener.Start();
        front.Unreachable = true;

        // Uploads go on while the cloud is gone: acknowledged from the local cache.
        await UploadAsync(25, 2);

        // Until the release loop has met the outage: its first failed put, counted by this proxy's
        // own meter (the scope tells it from other proxies in the process).
        await firstError.Task.WaitAsync(TimeSpan.FromSeconds(60));
        var during = await UploadCacheTests.HealthOfCacheAsync(proxy);
        var data = during.GetProperty("data");
        Assert.True(data.GetProperty("waitingBlocks").GetInt32() > 0, "no backlog reported during the outage");
        Assert.True(data.GetProperty("backendErrors").GetInt64() > 0, "no backend error reported during the outage");
        Assert.Equal("Degraded", during.GetProperty("status").GetString());

        // Served from the cache meanwhile.
        var (someHandle, someFile) = files.Last();
        using (var meanwhile = new MemoryStream())
        {
            await proxy.Client(ProxyRole.Consumer).FetchAsync(someHandle, meanwhile);
            Assert.True(someFile.AsSpan().SequenceEqual(meanwhile.ToArray()));
        }

        front.Unreachable = false;
        await UploadCacheTests.WaitUntilReleasedAsync(proxy, TimeSpan.FromMinutes(2));

        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        var cloud = (await proxy.CloudObjectsAsync()).Select(o => o.Name).ToHashSet();
        foreach (var (handle, file) in files)
        {
            Assert.All(await blocks.OfRecordAsync(handle), b => Assert.True(b.State == BlockState.Released && cloud.Contains(b.ObjectName), $"block {b.BlockIndex} of {handle} was not delivered"));
            using var back = new MemoryStream();
            await proxy.Client(ProxyRole.Consumer).FetchAsync(handle, back);
            Assert.True(file.AsSpan().SequenceEqual(back.ToArray()), $"record {handle} came back different");
        }

        Assert.Equal("Healthy", (await UploadCacheTests.HealthOfCacheAsync(proxy)).GetProperty("status").GetString());
        Assert.Contains(front.Requests, r => r.Status == 0);
        Assert.DoesNotContain(front.Requests, r => r.IsRefusal);
    }
}
