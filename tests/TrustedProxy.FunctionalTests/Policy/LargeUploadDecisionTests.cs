using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Policy;

/// <summary>
/// Uploads larger than what is sealed in memory (here 64 KiB, so that a small image counts) stream
/// to the cache file as they are read; the record-level decision still comes at their header,
/// before a cache file exists or a byte is encrypted.
/// </summary>
public sealed class LargeUploadDecisionTests : OwnPolicyTest
{
    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["TrustedProxy:Watermarking:MaxInMemoryBytes"] = "65536",
    };

    [Fact]
    public async Task ALargeUploadThePolicyRefuses_LeavesNoCacheFile_AndOneItPermits_RoundTripsBitExact()
    {
        await AddPolicyAsync("60-uploads.yaml", """
            rules:
              - id: no-angiography-uploads
                description: angiograms go to the regional archive, not through the proxy
                effect: deny
                actions: [upload]
                record: {modalities: [XA]}
            """);
        var producer = Proxy.Client(ProxyRole.Producer);
        var staging = Path.Combine(Proxy.Root, "data", "staging");
        var created = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var marker = $"marker-{Guid.NewGuid():N}";
        var markerSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var watcher = new FileSystemWatcher(staging) { NotifyFilter = NotifyFilters.FileName };
        watcher.Created += (_, e) =>
        {
            created.Enqueue(e.Name!);
            if (e.Name == marker)
            {
                markerSeen.TrySetResult();
            }
        };
        watcher.EnableRaisingEvents = true;

        // 512 × 512 × 2 bytes of pixels: eight times the in-memory limit.
        var angiogram = new DicomFileBuilder().Patient("LARGE-1", "Large^Refusal").Study("1.2.826.0.1.68.1", "1.2.826.0.1.68.1.1", "20230101", "XA").Image(512, 512, seed: 8).Build();
        Assert.True(angiogram.Length > 8 * 65536);
        var refused = await Assert.ThrowsAsync<TrustedProxyException>(() => producer.UploadAsync(new MemoryStream(angiogram)));

        // Events arrive in order: once the marker's is seen, any the refused upload caused has been too.
        await File.WriteAllBytesAsync(Path.Combine(staging, marker), []);
        await markerSeen.Task.WaitAsync(TimeSpan.FromSeconds(30));
        File.Delete(Path.Combine(staging, marker));
        Assert.Equal(403, refused.Status);
        Assert.Contains("no-angiography-uploads", refused.Detail, StringComparison.Ordinal);
        Assert.Equal([marker], created);

        // The same image as a CT is permitted, streamed through, sealed by its digest, and comes back whole.
        var ct = new DicomFileBuilder().Patient("LARGE-1", "Large^Refusal").Study("1.2.826.0.1.68.2", "1.2.826.0.1.68.2.1", "20230101", "CT").Image(512, 512, seed: 8).Build();
        var stored = await producer.UploadAsync(new MemoryStream(ct));
        using var back = new MemoryStream();
        await Proxy.Client(ProxyRole.Consumer).FetchAsync(stored.Handle, back);
        Assert.Equal(ct, back.ToArray());
        Assert.Equal("whole-file", stored.Seal);
    }
}
