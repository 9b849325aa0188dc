using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using TrustedProxy.Audit;
using TrustedProxy.Client;
using TrustedProxy.FunctionalTests.DicomWeb;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Audit;

/// <summary>
/// The audit log of a real server: what each request leaves in it, that it never holds a
/// patient's identity, and what compliance officers get to check it with.
/// </summary>
public sealed class AuditTrailTests : ProxyTest
{
    [Fact]
    public async Task AnUploadRetrievalAndDeletion_AndACertificateIssued_LeaveTheirEntries_UnderTheirRequestsAndActors()
    {
        var upload = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("AUDIT-1", "Trail^Anna").Build()));
        await Proxy.Client(ProxyRole.Consumer).FetchAsync(upload.Handle, Stream.Null);
        await Proxy.Client(ProxyRole.Admin).DeleteAsync(upload.Handle);
        var issued = await Proxy.Client(ProxyRole.Admin).IssueCertificateAsync("Local Hospital", "consumer", pkcs12Password: "a long enough password");

        var entries = Entries();
        var uploaded = Single(entries, AuditKinds.Upload, upload.Handle);
        var retrieved = Single(entries, AuditKinds.Retrieve, upload.Handle);
        var deleted = Single(entries, AuditKinds.Delete, upload.Handle);
        var certificate = entries.Single(e => Kind(e) == AuditKinds.CaIssue && e["data"]!["serial"]!.GetValue<string>() == issued.Serial);

        AssertDecidedThenDone(entries, uploaded, "producer", "Upload");
        AssertDecidedThenDone(entries, retrieved, "consumer", "Retrieve");
        AssertDecidedThenDone(entries, deleted, "admin", "Delete");
        AssertDecidedThenDone(entries, certificate, "admin", "Administer");
        Assert.Equal(uploaded["data"]!["patient"]!.GetValue<string>(), retrieved["data"]!["patient"]!.GetValue<string>());
        Assert.Equal("original", retrieved["data"]!["view"]!.GetValue<string>());
        Assert.Equal("Local Hospital", certificate["data"]!["organisation"]!.GetValue<string>());

        // The proxy's own first-run issuing is there too, by the proxy itself.
        Assert.Contains(entries, e => Kind(e) == AuditKinds.CaCreate && e["actor"]!["kind"]!.GetValue<string>() == AuditActor.ProxyKind);
    }

    [Fact]
    public async Task AWadoRsStudy_LeavesOneRetrieveEntryPerInstance_UnderItsRequest_WrittenAheadOrWhenFingerprinted()
    {
        // 70 instances: more than one batch of the entries a study writes ahead (64).
        const int Instances = 70;
        var study = "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true);
        var series = study + ".1";
        var producer = Proxy.Client(ProxyRole.Producer);
        var handles = new List<string>();
        for (var i = 1; i <= Instances; i++)
        {
            var file = new DicomFileBuilder($"{series}.{i}").Study(study, series, "20240102", "CT").Image(128, 128, seed: i).Build();
            handles.Add((await producer.UploadAsync(new MemoryStream(file))).Handle);
        }

        using var credential = Proxy.OpenCa().IssueClient("St Olav", ProxyRole.Consumer, TimeSpan.FromDays(1));
        var otherOrganisation = Proxy.Client(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(credential.ExportPkcs12("x"), "x"));
        foreach (var (client, copy) in new[] { (Proxy.Client(ProxyRole.Consumer), "unmarked"), (otherOrganisation, "fingerprinted") })
        {
            var (status, parts) = await DicomWebClient.RetrieveAsync(client, $"dicomweb/studies/{study}");
            Assert.Equal(200, status);
            Assert.Equal(Instances, parts.Count);

            // Exactly one entry per instance (written ahead, or when the fingerprinted copy was made, never both), each after the request's permit.
            var entries = Entries();
            var request = entries.Last(e => Kind(e) == AuditKinds.Decision && e["data"]!["action"]!.GetValue<string>() == "Retrieve")["request"]!.GetValue<string>();
            var retrieved = handles.Select(h => entries.Single(e => Kind(e) == AuditKinds.Retrieve && e["request"]?.GetValue<string>() == request && e["data"]!["record"]!.GetValue<string>() == h)).ToList();
            Assert.All(retrieved, e =>
            {
                AssertDecidedThenDone(entries, e, "consumer", "Retrieve");
                Assert.Equal(copy, e["data"]!["copy"]!.GetValue<string>());
            });
            Assert.Equal(Instances, entries.Count(e => Kind(e) == AuditKinds.Retrieve && e["request"]?.GetValue<string>() == request));
        }
    }

    [Fact]
    public async Task AnObliviousTransfer_LeavesTheSetAndK_InTheAuditLog_NotTheChoice()
    {
        var producer = Proxy.Client(ProxyRole.Producer);
        var first = await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("AUDIT-2", "Trail^Bo").Build()));
        var second = await producer.UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("AUDIT-3", "Trail^Cy").Build()));

        await Proxy.Client(ProxyRole.Consumer).FetchObliviousAsync([first.Handle, second.Handle], [second.Handle]);

        var entries = Entries();
        var offer = Assert.Single(entries, e => Kind(e) == AuditKinds.Decision && e["data"]!["resource"]!.GetValue<string>().StartsWith(DecisionLog.ObliviousOfferResourcePrefix, StringComparison.Ordinal));
        Assert.EndsWith($": 1 of 2 records [{first.Handle},{second.Handle}]", offer["data"]!["resource"]!.GetValue<string>());
        Assert.Equal("permit", offer["data"]!["result"]!.GetValue<string>());

        // Every record of the set is handed out (each under its own key), so the chosen one does not stand out.
        Assert.All(new[] { first.Handle, second.Handle }, handle => Single(entries, AuditKinds.Retrieve, handle));
    }

    [Fact]
    public async Task NoPatientNameOrId_FromTheCorpus_AppearsAnywhereInTheAuditFiles()
    {
        var producer = Proxy.Client(ProxyRole.Producer);
        var consumer = Proxy.Client(ProxyRole.Consumer);
        var files = DicomCorpus.WellFormedPart10.Where(f => IdentifiedFiles.Contains(f.Name)).ToList();
        Assert.True(files.Count >= 12, $"only {files.Count} of the chosen corpus files are well-formed Part 10 here");

        foreach (var file in files)
        {
            var upload = await producer.UploadFileAsync(file.Path);
            await consumer.FetchAsync(upload.Handle, Stream.Null);
            var hits = await consumer.SearchAsync(new RecordSearch { PatientId = file.PatientId });
            Assert.NotEmpty(hits.Items);
        }

        await Proxy.StopAsync();

        var identities = files.SelectMany(f => f.PersonNames.Concat(f.PatientId is { } id ? [id] : []))
            .SelectMany(n => n.Split(['^', '=', '\\'], StringSplitOptions.RemoveEmptyEntries).Append(n))
            .Where(part => part.Length >= 4 || part.Any(c => c > 127))
            .Distinct()
            .ToList();
        var auditDirectory = Path.Combine(Proxy.Root, "data", "audit");
        foreach (var path in Directory.GetFiles(auditDirectory))
        {
            var text = File.ReadAllText(path);
            var values = path.EndsWith(".log", StringComparison.Ordinal)
                ? text.Split('\n', StringSplitOptions.RemoveEmptyEntries).SelectMany(l => Strings(JsonNode.Parse(l)!)).ToList()
                : [];
            foreach (var identity in identities)
            {
                Assert.False(text.Contains(identity, StringComparison.Ordinal), $"'{identity}' is in {Path.GetFileName(path)}");
                Assert.DoesNotContain(values, v => v.Contains(identity, StringComparison.Ordinal));
            }
        }

        Assert.Contains(Entries(), e => Kind(e) == AuditKinds.Upload);
    }

    [Fact]
    public async Task ComplianceOfficers_GetACheckpoint_TheKey_TheVerdict_AndTheLogToVerifyOffline_AndOthersDoNot()
    {
        await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Build()));
        var compliance = Proxy.Client(ProxyRole.Compliance);

        var checkpoint = (await (await compliance.SendAsync(Get("api/v1/audit/checkpoint"))).Content.ReadFromJsonAsync<AuditCheckpoint>())!;
        var key = AuditPublicKey.FromPem(await (await compliance.SendAsync(Get("api/v1/audit/public-key"))).Content.ReadAsStringAsync());
        var verdict = JsonNode.Parse(await (await compliance.SendAsync(Get("api/v1/audit/verification"))).Content.ReadAsStringAsync())!;
        using var log = await compliance.SendAsync(Get("api/v1/audit/log"));
        var copy = Path.Combine(Proxy.Root, "downloaded.log");
        await File.WriteAllBytesAsync(copy, await log.Content.ReadAsByteArrayAsync());

        Assert.True(key.Verifies(checkpoint));
        var signed = Entries().Single(e => Kind(e) == AuditKinds.Checkpoint && e["data"]!["signature"]!.GetValue<string>() == checkpoint.Signature);
        Assert.Equal(checkpoint.Size, signed["seq"]!.GetValue<long>());
        Assert.Equal(AuditKinds.Decision, Entries()[(int)checkpoint.Size - 1]["kind"]!.GetValue<string>());
        Assert.True(verdict["intact"]!.GetValue<bool>(), verdict.ToJsonString());
        var offline = AuditVerifier.Verify(copy, AuditKeyTrust.Of(key), [new AuditAnchor("the checkpoint taken", checkpoint, External: true)], new AuditLogOptions().MaxEntryBytes);
        Assert.True(offline.Intact, offline.Summary);
        Assert.Equal(["the checkpoint taken"], offline.AnchorsMatched);

        using var refused = await Proxy.Client(ProxyRole.Consumer).SendAsync(Get("api/v1/audit/checkpoint"));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
    }

    // Patients with names and IDs unlikely to occur by chance in hex, base64 or numbers, several of them non-ASCII.
    private static readonly HashSet<string> IdentifiedFiles =
    [
        "CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm", "rtplan.dcm", "693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm", "test-SR.dcm",
        "chrFren.dcm", "chrGerm.dcm", "chrH31.dcm", "chrRuss.dcm", "chrX1.dcm", "chrArab.dcm", "chrI2.dcm", "chrGreek.dcm",
    ];

    private List<JsonObject> Entries() =>
        File.ReadAllLines(Path.Combine(Proxy.Root, "data", "audit", "audit.log")).Select(l => (JsonObject)JsonNode.Parse(l)!).ToList();

    private static string Kind(JsonObject entry) => entry["kind"]!.GetValue<string>();

    private static JsonObject Single(List<JsonObject> entries, string kind, string handle) =>
        entries.Single(e => Kind(e) == kind && e["data"]!["record"]?.GetValue<string>() == handle);

    // The act is recorded under the request whose permit precedes it, by the same member.
    private static void AssertDecidedThenDone(List<JsonObject> entries, JsonObject done, string role, string action)
    {
        var request = done["request"]!.GetValue<string>();
        var decision = entries.Single(e => Kind(e) == AuditKinds.Decision && e["request"]?.GetValue<string>() == request);
        Assert.Equal(action, decision["data"]!["action"]!.GetValue<string>());
        Assert.Equal("permit", decision["data"]!["result"]!.GetValue<string>());
        Assert.True(decision["seq"]!.GetValue<long>() < done["seq"]!.GetValue<long>());
        Assert.Equal(role, done["actor"]!["role"]!.GetValue<string>());
        Assert.Equal(decision["actor"]!.ToJsonString(), done["actor"]!.ToJsonString());
    }

    private static IEnumerable<string> Strings(JsonNode node) => node switch
    {
        JsonObject o => o.SelectMany(p => p.Value is null ? [p.Key] : Strings(p.Value).Append(p.Key)),
        JsonArray a => a.SelectMany(v => v is null ? [] : Strings(v)),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => [v.GetValue<string>()],
        _ => [],
    };

    private static HttpRequestMessage Get(string path) => new(HttpMethod.Get, path);
}
