using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TrustedProxy.Audit;
using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.DicomWeb;

/// <summary>
/// Every STOW-RS part's outcome is in the answer: instances already stored, parts stored before a
/// later part fails, refused parts (audited); a body that is not multipart at all is a 400 problem.
/// </summary>
public sealed class StowOutcomeTests : ProxyTest
{
    private const string Study = "1.2.826.0.1.3680043.9.7777.15";
    private const string FailedSopSequence = "00081198";
    private const string ReferencedSopSequence = "00081199";
    private const string FailureReason = "00081197";
    private const string RetrieveUrl = "00081190";
    private const string Outcome = "00091101";
    private const string Handle = "00091102";

    [Fact]
    public async Task StowRs_OfAStudyAgain_StoresNothingNew_AndAnswersEveryInstanceAlreadyStored_WithTheExistingRecord()
    {
        var files = Instances(3);
        var producer = Proxy.Client(ProxyRole.Producer);
        var (_, first) = await DicomWebClient.StoreAsync(producer, "dicomweb/studies", files);
        var objects = (await Proxy.CloudObjectsAsync()).Count;

        var (status, again) = await DicomWebClient.StoreAsync(producer, "dicomweb/studies", files);

        Assert.Equal(200, status);
        Assert.False(again.TryGetProperty(FailedSopSequence, out _));
        var before = Items(first, ReferencedSopSequence);
        var after = Items(again, ReferencedSopSequence);
        Assert.Equal(3, after.Count);
        Assert.All(before, i => Assert.Equal("stored", DicomWebClient.Value(i, Outcome)));
        Assert.All(after, i => Assert.Equal("already-stored", DicomWebClient.Value(i, Outcome)));
        Assert.Equal(before.Select(i => DicomWebClient.Value(i, Handle)), after.Select(i => DicomWebClient.Value(i, Handle)));
        Assert.Equal(before.Select(i => DicomWebClient.Value(i, RetrieveUrl)), after.Select(i => DicomWebClient.Value(i, RetrieveUrl)));
        Assert.Equal(objects, (await Proxy.CloudObjectsAsync()).Count);
        Assert.Equal(3, (await Proxy.Client(ProxyRole.Consumer).SearchAsync(new RecordSearch { StudyInstanceUid = Study })).Items.Count);
    }

    [Fact]
    public async Task StowRs_AnotherFileUnderAStoredUid_FailsThatPartWithDuplicateSopInstance_AndStoresTheRest()
    {
        var producer = Proxy.Client(ProxyRole.Producer);
        var files = Instances(2);
        await DicomWebClient.StoreAsync(producer, "dicomweb/studies", [files[0]]);
        var changed = Instance(1, seed: 99);

        var (status, body) = await DicomWebClient.StoreAsync(producer, "dicomweb/studies", [changed, files[1]]);

        Assert.Equal(202, status);
        var failed = Assert.Single(Items(body, FailedSopSequence));
        Assert.Equal("273", DicomWebClient.Value(failed, FailureReason)); // 0x0111 Duplicate SOP Instance
        Assert.Equal(InstanceUid(1), DicomWebClient.Value(failed, "00081155"));
        Assert.Equal("duplicate-instance", DicomWebClient.Value(failed, Outcome));
        var stored = Assert.Single(Items(body, ReferencedSopSequence));
        Assert.Equal(InstanceUid(2), DicomWebClient.Value(stored, "00081155"));
    }

    [Fact]
    public async Task StowRs_PartsStoredBeforeATruncatedPart_AreInTheAnswerWithTheirHandles()
    {
        var files = Instances(3);
        var whole = DicomWebClient.Multipart(files.Select(f => ("application/dicom", f)));
        var cut = whole.AsSpan().LastIndexOf(Encoding.ASCII.GetBytes($"--{DicomWebClient.Boundary}\r\nContent-Type")) + 200;

        var (status, body, _) = await DicomWebClient.PostAsync(Proxy.Client(ProxyRole.Producer), "dicomweb/studies", whole[..cut]);

        Assert.Equal(202, status);
        var stored = Items(body, ReferencedSopSequence);
        Assert.Equal([InstanceUid(1), InstanceUid(2)], stored.Select(i => DicomWebClient.Value(i, "00081155")));
        var failed = Assert.Single(Items(body, FailedSopSequence));
        Assert.Equal("49152", DicomWebClient.Value(failed, FailureReason));
        Assert.Equal("multipart-framing", DicomWebClient.Value(failed, Outcome));
        var consumer = Proxy.Client(ProxyRole.Consumer);
        foreach (var item in stored)
        {
            Assert.NotNull(await consumer.GetAsync(DicomWebClient.Value(item, Handle)!));
        }

        Assert.Equal(2, (await consumer.SearchAsync(new RecordSearch { StudyInstanceUid = Study })).Items.Count);
    }

    public static TheoryData<string> BrokenBodies => ["empty", "wrong-boundary", "no-boundary", "truncated-first-part", "unterminated-headers"];

    [Theory]
    [MemberData(nameof(BrokenBodies))]
    public async Task StowRs_WithBrokenMultipartFraming_IsA400Problem_AndStoresNothing(string broken)
    {
        var file = Instance(1, seed: 1);
        var whole = DicomWebClient.Multipart([("application/dicom", file)]);
        var body = broken switch
        {
            "empty" => [],
            "wrong-boundary" => Encoding.Latin1.GetBytes(Encoding.Latin1.GetString(whole).Replace(DicomWebClient.Boundary, "another-boundary", StringComparison.Ordinal)),
            "no-boundary" => file,
            "truncated-first-part" => whole[..(whole.Length / 2)],
            _ => Encoding.ASCII.GetBytes($"--{DicomWebClient.Boundary}\r\nContent-Type: application/dicom\r\n"),
        };
        var (status, problem, contentType) = await DicomWebClient.PostAsync(Proxy.Client(ProxyRole.Producer), "dicomweb/studies", body);

        Assert.Equal(400, status);
        Assert.Equal("application/problem+json", contentType);
        Assert.Equal("urn:trustedproxy:problem:bad-request", problem.GetProperty("type").GetString());
        Assert.Empty(await Proxy.CloudObjectsAsync());
    }

    [Fact]
    public async Task StowRs_RefusedParts_AreAudited_WithoutTheirIdentifiers()
    {
        var truncated = Instance(2, seed: 2)[..600];
        var body = DicomWebClient.Multipart([("application/dicom", Instance(1, seed: 1)), ("text/plain", "not an image"u8.ToArray()), ("application/dicom", truncated)]);

        var (status, answer, _) = await DicomWebClient.PostAsync(Proxy.Client(ProxyRole.Producer), "dicomweb/studies", body);

        Assert.Equal(202, status);
        Assert.Single(Items(answer, ReferencedSopSequence));
        Assert.Equal(["49152", "49152"], Items(answer, FailedSopSequence).Select(i => DicomWebClient.Value(i, FailureReason)));
        var log = File.ReadAllLines(Path.Combine(Proxy.Root, "data", "audit", "audit.log"));
        var refused = log.Select(l => JsonNode.Parse(l)!).Where(e => e["kind"]!.GetValue<string>() == AuditKinds.UploadRefused).ToList();
        Assert.Equal(2, refused.Count);
        Assert.Equal("not-dicom-part", refused[0]!["data"]!["reason"]!.GetValue<string>());
        Assert.StartsWith("invalid-dicom:", refused[1]!["data"]!["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.All(refused, e => Assert.Equal("Local Hospital", e["data"]!["origin"]!.GetValue<string>()));
        Assert.DoesNotContain(log, l => l.Contains(InstanceUid(2), StringComparison.Ordinal) || l.Contains("STOW-PATIENT", StringComparison.Ordinal));
    }

    private static List<JsonElement> Items(JsonElement body, string sequence) =>
        body.TryGetProperty(sequence, out var element) ? [.. element.GetProperty("Value").EnumerateArray()] : [];

    private static string InstanceUid(int i) => $"{Study}.1.{i}";

    private static byte[] Instance(int i, int seed) => new DicomFileBuilder(InstanceUid(i))
        .Patient("STOW-PATIENT", "Parts^Petra")
        .Study(Study, $"{Study}.1", "20240202", "CT")
        .Text(0x0020, 0x0013, "IS", i.ToString())
        .PixelData(4096, seed)
        .Build();

    private static List<byte[]> Instances(int count) => [.. Enumerable.Range(1, count).Select(i => Instance(i, seed: i))];
}
