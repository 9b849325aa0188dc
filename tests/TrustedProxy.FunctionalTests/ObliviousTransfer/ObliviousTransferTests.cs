using System.Net.Http.Json;
using System.Text.Json;
using TrustedProxy.Client;
using TrustedProxy.FunctionalTests.UploadCache;
using TrustedProxy.ObliviousTransfer;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.ObliviousTransfer;

/// <summary>Oblivious transfer to consumers over the real API: k of a set of N, bit-exact, on every backend, with the set and k (never the choice) in the audit trail.</summary>
public abstract class ObliviousTransferTests
{
    /// <summary>Cloud reads in the epochs of the read schedule, as in production, at a tenth of a second an epoch (the test default reads at once).</summary>
    internal static readonly Dictionary<string, string?> ConstantRateReads = new()
    {
        ["TrustedProxy:ObliviousRetrieval:Schedule"] = "epochs",
        ["TrustedProxy:ObliviousRetrieval:EpochSeconds"] = "0.1",
        ["TrustedProxy:ObliviousRetrieval:GroupSize"] = "4",
    };

    protected abstract Task<ProxyHost> StartAsync(Dictionary<string, string?>? settings = null);

    [Fact]
    public async Task UnderConstantRateGroupReads_APlainRead_OneOfN_AndKOfN_AreBitExact()
    {
        await using var proxy = await StartAsync(ConstantRateReads);
        var (handles, files) = await UploadAsync(proxy, 8);
        var consumer = proxy.Client(ProxyRole.Consumer);

        using var plain = new MemoryStream();
        await consumer.FetchAsync(handles[6], plain);
        var one = await consumer.FetchObliviousAsync(handles, [handles[2]]);
        var four = await consumer.FetchObliviousAsync(handles, [handles[1], handles[4], handles[6], handles[7]]);

        Assert.Equal(files[6], plain.ToArray());
        Assert.Equal(files[2], Assert.Single(one));
        Assert.Equal([files[1], files[4], files[6], files[7]], four);
    }

    [Fact]
    public async Task AConsumer_TakesOneAndThenThreeOfEight_BitExact()
    {
        await using var proxy = await StartAsync();
        var (handles, files) = await UploadAsync(proxy, 8);
        var consumer = proxy.Client(ProxyRole.Consumer);

        var one = await consumer.FetchObliviousAsync(handles, [handles[3]]);
        var three = await consumer.FetchObliviousAsync(handles, [handles[7], handles[0], handles[5]]);

        Assert.Equal(files[3], Assert.Single(one));
        Assert.Equal([files[7], files[0], files[5]], three);
    }

    internal static async Task<(List<string> Handles, List<byte[]> Files)> UploadAsync(ProxyHost proxy, int count)
    {
        var handles = new List<string>();
        var files = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var file = new DicomFileBuilder().Patient($"OT{i}", "Oblivious^Patient").PixelData(20_000 + (15_000 * i), seed: 100 + i).Build();
            handles.Add((await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file))).Handle);
            files.Add(file);
        }

        return (handles, files);
    }
}

public sealed class FileSystemObliviousTransferTests : ObliviousTransferTests
{
    protected override Task<ProxyHost> StartAsync(Dictionary<string, string?>? settings = null) => ProxyHost.StartAsync(BackendSettings.FileSystem, settings: settings);

    [Fact]
    public async Task RecordsStillInTheUploadCache_AreTransferredToo()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: UploadCacheTests.Held);
        var (handles, files) = await UploadAsync(proxy, 4);

        var taken = await proxy.Client(ProxyRole.Consumer).FetchObliviousAsync(handles, [handles[2]]);

        Assert.Empty(await proxy.CloudObjectsAsync());
        Assert.Equal(files[2], Assert.Single(taken));
    }

    [Fact]
    public async Task TheAuditTrail_HoldsTheSetAndK_AndNothingOfTheChoice()
    {
        await using var proxy = await ProxyHost.StartAsync();
        var (handles, _) = await UploadAsync(proxy, 5);
        await proxy.Client(ProxyRole.Consumer).FetchObliviousAsync(handles, [handles[4]]);

        using var response = await proxy.Client(ProxyRole.Compliance).SendAsync(new HttpRequestMessage(HttpMethod.Get, "api/v1/audit/decisions?limit=1000"));
        var text = await response.Content.ReadAsStringAsync();
        var offer = JsonDocument.Parse(text).RootElement.EnumerateArray()
            .Select(d => d.GetProperty("resource").GetString()!)
            .Single(r => r.StartsWith("offer ", StringComparison.Ordinal));

        Assert.Contains("1 of 5 records", offer, StringComparison.Ordinal);
        Assert.All(handles, h => Assert.Contains(h, offer, StringComparison.Ordinal));
    }

    [Fact]
    public async Task AChoiceIsAnsweredOnce_AReplayFindsNoOffer()
    {
        await using var proxy = await ProxyHost.StartAsync();
        var (handles, _) = await UploadAsync(proxy, 3);
        var consumer = proxy.Client(ProxyRole.Consumer);
        var offer = await OfferAsync(consumer, handles, 1);
        var choice = new OtReceiver(OtOffer.Parse(Convert.FromBase64String(offer.Offer)), [1]).Choice.ToBytes();

        using var first = await PostChoiceAsync(consumer, offer.SessionId, choice);
        using var replay = await PostChoiceAsync(consumer, offer.SessionId, choice);

        Assert.Equal(200, (int)first.StatusCode);
        Assert.Equal(404, (int)replay.StatusCode);
        Assert.Contains("ot-offer-not-found", await replay.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMalformedChoice_GetsAClearError()
    {
        await using var proxy = await ProxyHost.StartAsync();
        var (handles, _) = await UploadAsync(proxy, 3);
        var consumer = proxy.Client(ProxyRole.Consumer);
        var offer = await OfferAsync(consumer, handles, 1);
        var bogus = Convert.FromHexString(offer.SessionId).Concat(new byte[33]).ToArray();

        using var response = await PostChoiceAsync(consumer, offer.SessionId, bogus);

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Contains("invalid-ot-message", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnOfferOfARecordOutsideScope_OrForAProducer_IsRefused()
    {
        await using var proxy = await ProxyHost.StartAsync();
        var (handles, _) = await UploadAsync(proxy, 2);

        var missing = await Assert.ThrowsAsync<TrustedProxyException>(() => proxy.Client(ProxyRole.Consumer).FetchObliviousAsync([handles[0], "aaaaaaaaaaaaaaaaaaaaaaaaaa"], [handles[0]]));
        var producer = await Assert.ThrowsAsync<TrustedProxyException>(() => proxy.Client(ProxyRole.Producer).FetchObliviousAsync(handles, [handles[0]]));

        Assert.Equal(404, missing.Status);
        Assert.Equal(403, producer.Status);
    }

    private static async Task<ObliviousOffer> OfferAsync(TrustedProxyClient client, IReadOnlyList<string> handles, int choices)
    {
        using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "api/v1/oblivious/offers") { Content = JsonContent.Create(new ObliviousOfferRequest(handles, choices)) });
        Assert.Equal(201, (int)response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<ObliviousOffer>(new JsonSerializerOptions(JsonSerializerDefaults.Web)))!;
    }

    private static Task<HttpResponseMessage> PostChoiceAsync(TrustedProxyClient client, string sessionId, byte[] choice)
    {
        var content = new ByteArrayContent(choice);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        return client.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"api/v1/oblivious/offers/{sessionId}/choice") { Content = content });
    }
}

[Collection("azurite")]
public sealed class AzureBlobObliviousTransferTests(AzuriteFixture azurite) : ObliviousTransferTests
{
    protected override Task<ProxyHost> StartAsync(Dictionary<string, string?>? settings = null) => ProxyHost.StartAsync(BackendSettings.Azurite(azurite.Emulator), settings: settings);
}

[Collection("s3rver")]
public sealed class S3ObliviousTransferTests : ObliviousTransferTests, IDisposable
{
    private readonly S3rverFixture _s3rver;

    public S3ObliviousTransferTests(S3rverFixture s3rver)
    {
        _s3rver = s3rver;
        s3rver.BeginCleanTest();
    }

    protected override Task<ProxyHost> StartAsync(Dictionary<string, string?>? settings = null) => ProxyHost.StartAsync(_s3rver.Backend(), settings: settings);

    public void Dispose() => _s3rver.AssertNothingRefused();
}
