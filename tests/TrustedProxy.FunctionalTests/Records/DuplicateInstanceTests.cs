using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using TrustedProxy.Audit;
using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Records;

/// <summary>
/// An instance sent again by the organisation that stored it, as a PACS re-sending a study does:
/// stored once, answered with the existing record; another file under the same SOP Instance UID is
/// refused (keep-first, the default) or replaces the old record (replace); audited either way.
/// </summary>
public sealed class DuplicateInstanceTests : ProxyTest
{
    private const string Study = "1.2.826.0.1.3680043.9.7777.13";

    [Fact]
    public async Task Upload_OfTheSameFileAgain_IsStoredOnce_AndAnsweredWithTheExistingRecord()
    {
        var file = Instance("1.2.826.0.1.3680043.9.7777.13.1.1", seed: 1);
        var producer = Proxy.Client(ProxyRole.Producer);
        var first = await UploadAsync(producer, file);
        var objects = (await Proxy.CloudObjectsAsync()).Count;

        var again = await UploadAsync(producer, file);

        Assert.Equal(HttpStatusCode.Accepted, first.Status);
        Assert.False(first.Result!.AlreadyStored);
        Assert.Equal(HttpStatusCode.OK, again.Status);
        Assert.True(again.Result!.AlreadyStored);
        Assert.Equal(first.Result.Handle, again.Result.Handle);
        Assert.Equal(objects, (await Proxy.CloudObjectsAsync()).Count);
        Assert.Single((await Proxy.Client(ProxyRole.Consumer).SearchAsync(new RecordSearch { StudyInstanceUid = Study })).Items);
        var duplicate = Assert.Single(AuditEntries(), e => Kind(e) == AuditKinds.UploadDuplicate);
        Assert.Equal(first.Result.Handle, duplicate["data"]!["record"]!.GetValue<string>());
        Assert.Single(AuditEntries(), e => Kind(e) == AuditKinds.Upload);
    }

    [Fact]
    public async Task Upload_OfAnotherFileUnderTheSameUid_IsRefusedWith409_AndTheFirstIsKept()
    {
        const string uid = "1.2.826.0.1.3680043.9.7777.13.1.2";
        var original = Instance(uid, seed: 1);
        var producer = Proxy.Client(ProxyRole.Producer);
        var first = await UploadAsync(producer, original);

        var other = await UploadAsync(producer, Instance(uid, seed: 2));

        Assert.Equal(HttpStatusCode.Conflict, other.Status);
        Assert.Equal("application/problem+json", other.ContentType);
        Assert.Equal("urn:trustedproxy:problem:duplicate-instance", other.Problem!["type"]!.GetValue<string>());
        Assert.Equal(first.Result!.Handle, other.Problem["record"]!.GetValue<string>());
        using var fetched = new MemoryStream();
        await Proxy.Client(ProxyRole.Consumer).FetchAsync(first.Result.Handle, fetched);
        Assert.Equal(original, fetched.ToArray());
        Assert.Single((await Proxy.Client(ProxyRole.Consumer).SearchAsync(new RecordSearch { StudyInstanceUid = Study })).Items);
        var refused = Assert.Single(AuditEntries(), e => Kind(e) == AuditKinds.UploadRefused);
        Assert.Equal(UploadRefusals.DuplicateInstance, refused["data"]!["reason"]!.GetValue<string>());
        Assert.Equal(first.Result.Handle, refused["data"]!["record"]!.GetValue<string>());
    }

    [Fact]
    public async Task SameUid_FromAnotherOrganisation_IsItsOwnRecord()
    {
        var file = Instance("1.2.826.0.1.3680043.9.7777.13.1.3", seed: 1);
        using var bergen = Proxy.OpenCa().IssueClient("Bergen Hospital", ProxyRole.Producer, TimeSpan.FromDays(1));
        var local = await UploadAsync(Proxy.Client(ProxyRole.Producer), file);

        var other = await UploadAsync(Proxy.Client(bergen.Certificate), file);

        Assert.Equal(HttpStatusCode.Accepted, other.Status);
        Assert.False(other.Result!.AlreadyStored);
        Assert.NotEqual(local.Result!.Handle, other.Result.Handle);
    }

    [Fact]
    public async Task ConcurrentUploads_OfTheSameInstance_StoreItOnce()
    {
        var file = Instance("1.2.826.0.1.3680043.9.7777.13.1.4", seed: 1);
        var producer = Proxy.Client(ProxyRole.Producer);

        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => UploadAsync(producer, file)));

        Assert.Single(answers, a => a.Status == HttpStatusCode.Accepted);
        Assert.Equal(7, answers.Count(a => a.Status == HttpStatusCode.OK && a.Result!.AlreadyStored));
        Assert.Single(answers.Select(a => a.Result!.Handle).Distinct());
        Assert.Single((await Proxy.Client(ProxyRole.Consumer).SearchAsync(new RecordSearch { StudyInstanceUid = Study })).Items);
    }

    private static byte[] Instance(string sopInstanceUid, int seed) => new DicomFileBuilder(sopInstanceUid)
        .Patient("DUP-PATIENT", "Again^Agnes")
        .Study(Study, $"{Study}.1", "20240101", "CT")
        .PixelData(2048, seed)
        .Build();

    internal static async Task<UploadAnswer> UploadAsync(TrustedProxyClient client, byte[] file)
    {
        var content = new ByteArrayContent(file);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "api/v1/records") { Content = content });
        var type = response.Content.Headers.ContentType?.MediaType;
        return response.IsSuccessStatusCode
            ? new UploadAnswer(response.StatusCode, type, await response.Content.ReadFromJsonAsync<UploadResult>(), null)
            : new UploadAnswer(response.StatusCode, type, null, JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject());
    }

    private List<JsonObject> AuditEntries() =>
        File.ReadAllLines(Path.Combine(Proxy.Root, "data", "audit", "audit.log")).Select(l => (JsonObject)JsonNode.Parse(l)!).ToList();

    private static string Kind(JsonObject entry) => entry["kind"]!.GetValue<string>();

    internal sealed record UploadAnswer(HttpStatusCode Status, string? ContentType, UploadResult? Result, JsonObject? Problem);
}

/// <summary>The same, with TrustedProxy:Records:DuplicateInstance = replace.</summary>
public sealed class DuplicateInstanceReplaceTests : ProxyTest
{
    protected override Task<ProxyHost> StartProxyAsync() =>
        ProxyHost.StartAsync(settings: new Dictionary<string, string?> { ["TrustedProxy:Records:DuplicateInstance"] = "replace" });

    [Fact]
    public async Task Upload_OfAnotherFileUnderTheSameUid_ReplacesTheOldRecord_ThroughTheDeletionPath()
    {
        const string study = "1.2.826.0.1.3680043.9.7777.14";
        const string uid = "1.2.826.0.1.3680043.9.7777.14.1.1";
        byte[] Instance(int seed) => new DicomFileBuilder(uid).Patient("DUP-PATIENT", "Again^Agnes").Study(study, $"{study}.1", "20240101", "CT").PixelData(2048, seed).Build();
        var producer = Proxy.Client(ProxyRole.Producer);
        var first = await DuplicateInstanceTests.UploadAsync(producer, Instance(1));
        var corrected = Instance(2);

        var second = await DuplicateInstanceTests.UploadAsync(producer, corrected);
        var same = await DuplicateInstanceTests.UploadAsync(producer, corrected);

        Assert.Equal(HttpStatusCode.Accepted, second.Status);
        Assert.Equal([first.Result!.Handle], second.Result!.Replaced!);
        Assert.True(same.Result!.AlreadyStored);
        Assert.Equal(second.Result.Handle, same.Result.Handle);
        var consumer = Proxy.Client(ProxyRole.Consumer);
        var found = Assert.Single((await consumer.SearchAsync(new RecordSearch { StudyInstanceUid = study })).Items);
        Assert.Equal(second.Result.Handle, found.Handle);
        using var fetched = new MemoryStream();
        await consumer.FetchAsync(second.Result.Handle, fetched);
        Assert.Equal(corrected, fetched.ToArray());
        var gone = await Assert.ThrowsAsync<TrustedProxyException>(() => consumer.FetchAsync(first.Result.Handle, new MemoryStream()));
        Assert.Equal(404, gone.Status);

        var audit = File.ReadAllLines(Path.Combine(Proxy.Root, "data", "audit", "audit.log")).Select(l => JsonNode.Parse(l)!).ToList();
        var upload = Assert.Single(audit, e => e["kind"]!.GetValue<string>() == AuditKinds.Upload && e["data"]!["record"]!.GetValue<string>() == second.Result.Handle);
        Assert.Equal(first.Result.Handle, upload["data"]!["replaces"]![0]!.GetValue<string>());
        Assert.Single(audit, e => e["kind"]!.GetValue<string>() == AuditKinds.Delete && e["data"]!["record"]!.GetValue<string>() == first.Result.Handle);
    }
}
