using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using TrustedProxy.Audit;
using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Export;

/// <summary>
/// Export to a recipient through the real server and the tproxy executable (docs/export.md): a
/// consumer exports for research, the partner opens the bundle with its own key and gets exactly
/// the de-identified view; anyone else's key, a tampered bundle, and an export the policy does not
/// permit are each refused with one line, leaving nothing behind.
/// </summary>
public sealed class ExportTests : ProxyTest, IDisposable
{
    private readonly TemporaryDirectory _work = new();

    private Task<(int ExitCode, string Output, string Error)> Cli(params string[] arguments) =>
        CliProcess.RunAsync(Proxy.Root, [.. arguments, "--server", Proxy.BaseAddress.ToString()]);

    private Task<(int ExitCode, string Output, string Error)> Recipient(params string[] arguments) =>
        CliProcess.RunAsync(_work.Path, arguments);

    /// <summary>A member certificate of the federation for someone outside the proxy's data path, as PEM files in the work directory.</summary>
    private (string Certificate, string Key) Member(string organisation)
    {
        var ca = Proxy.OpenCa();
        using var credential = ca.IssueClient(organisation, ProxyRole.Consumer, TimeSpan.FromDays(30));
        var stem = organisation.Replace(' ', '-').ToLowerInvariant();
        var (certificate, key) = (_work.File(stem + ".crt.pem"), _work.File(stem + ".key.pem"));
        credential.WritePem(certificate, key);
        return (certificate, key);
    }

    private async Task<List<string>> UploadAsync()
    {
        var handles = new List<string>();
        foreach (var name in new[] { "CT_small.dcm", "MR_small.dcm" })
        {
            await using var file = File.OpenRead(Path.Combine(DicomCorpus.TestFiles, name));
            handles.Add((await Proxy.Client(ProxyRole.Producer).UploadAsync(file)).Handle);
        }

        return handles;
    }

    private async Task<byte[]> ResearchViewAsync(string handle)
    {
        var researcher = Proxy.Client(ProxyRole.Consumer);
        researcher.PurposeOfUse = "research";
        using var copy = new MemoryStream();
        await researcher.FetchAsync(handle, copy);
        return copy.ToArray();
    }

    [Fact]
    public async Task AResearchExport_OpensForItsRecipient_AsTheDeidentifiedView_BitExact_AndIsAuditedWithTheSetItCarried()
    {
        var handles = await UploadAsync();
        var partner = Member("Research Partner");
        var bundle = _work.File("bundle.tpxe");

        var export = await Cli("export", "--to", partner.Certificate, "--records", string.Join(",", handles), "-o", bundle, "--purpose", "research");
        Assert.True(export.ExitCode == 0, export.Error);
        var opened = await Recipient("open", bundle, "--key", partner.Key, "--ca", Proxy.Certificates.CaCertificate, "-o", _work.File("records"));
        Assert.True(opened.ExitCode == 0, opened.Error);

        foreach (var handle in handles)
        {
            var received = await File.ReadAllBytesAsync(Path.Combine(_work.File("records"), handle + ".dcm"));
            Assert.Equal(await ResearchViewAsync(handle), received);
            var original = DicomCorpus.Get(handle == handles[0] ? "CT_small.dcm" : "MR_small.dcm");
            Assert.NotEqual(await File.ReadAllBytesAsync(Path.Combine(DicomCorpus.TestFiles, handle == handles[0] ? "CT_small.dcm" : "MR_small.dcm")), received);
            Assert.Equal(-1, received.AsSpan().IndexOf(System.Text.Encoding.ASCII.GetBytes(original.PatientId!)));
            Assert.Contains($"{handle}\tdeidentified:", opened.Output, StringComparison.Ordinal);
        }

        var bundleId = export.Output.Split("bundle ")[1].Trim();
        var entry = Assert.Single(AuditEntries(), e => e["kind"]!.GetValue<string>() == AuditKinds.Export);
        Assert.Equal(bundleId, entry["data"]!["bundle"]!.GetValue<string>());
        Assert.Equal("Research Partner", entry["data"]!["recipientOrganisation"]!.GetValue<string>());
        Assert.Equal(handles, entry["data"]!["records"]!.AsArray().Select(r => r!["record"]!.GetValue<string>()));
        Assert.All(entry["data"]!["records"]!.AsArray(), r => Assert.StartsWith("deidentified:", r!["view"]!.GetValue<string>(), StringComparison.Ordinal));

        // No patient identifier reaches the audit log with it.
        var log = await File.ReadAllTextAsync(Path.Combine(Proxy.Root, "data", "audit", "audit.log"));
        Assert.DoesNotContain(DicomCorpus.Get("CT_small.dcm").PatientId!, log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnExport_IsRefusedToAnyoneElsesKey_AndWhenTampered_WithOneLine_AndNothingWritten()
    {
        var handles = await UploadAsync();
        var partner = Member("Research Partner");
        var stranger = Member("Someone Else");
        var bundle = _work.File("bundle.tpxe");
        var export = await Cli("export", "--to", partner.Certificate, "--records", handles[0], "-o", bundle, "--purpose", "research");
        Assert.True(export.ExitCode == 0, export.Error);

        var wrongKey = await Recipient("open", bundle, "--key", stranger.Key, "--ca", Proxy.Certificates.CaCertificate, "-o", _work.File("a"));
        var tampered = _work.File("tampered.tpxe");
        var bytes = await File.ReadAllBytesAsync(bundle);
        bytes[bytes.Length - 200] ^= 0x20; // inside the record's last sealed segment
        await File.WriteAllBytesAsync(tampered, bytes);
        var altered = await Recipient("open", tampered, "--key", partner.Key, "--ca", Proxy.Certificates.CaCertificate, "-o", _work.File("b"));

        Assert.Equal(1, wrongKey.ExitCode);
        Assert.Contains("for another recipient", wrongKey.Error, StringComparison.Ordinal);
        Assert.Single(wrongKey.Error.Trim().Split('\n'));
        Assert.Equal(1, altered.ExitCode);
        Assert.Contains("fails authentication", altered.Error, StringComparison.Ordinal);
        Assert.Single(altered.Error.Trim().Split('\n'));
        Assert.False(Path.Exists(_work.File("a")));
        Assert.False(Path.Exists(_work.File("b")));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(_work.Path), p => Path.GetFileName(p).StartsWith('.'));
    }

    [Fact]
    public async Task AnExportThePolicyDoesNotPermit_OrToAnOutsider_IsRefusedWithAProblem_AndNothingIsAuditedAsSent()
    {
        var handles = await UploadAsync();
        var partner = Member("Research Partner");

        // For treatment, no rule permits an export: originals do not leave this way.
        var treatment = await Cli("export", "--to", partner.Certificate, "--records", handles[0], "-o", _work.File("t.tpxe"));

        // A certificate of no member of this federation (self-signed, P-256) is not a recipient.
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var outsider = new CertificateRequest("CN=Outsider", key, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var researcher = Proxy.Client(ProxyRole.Consumer);
        researcher.PurposeOfUse = "research";
        var problem = await Assert.ThrowsAsync<TrustedProxyException>(() => researcher.ExportAsync(new ExportRequest(outsider.ExportCertificatePem(), [handles[0]]), Stream.Null));
        var neither = await Assert.ThrowsAsync<TrustedProxyException>(() => researcher.ExportAsync(new ExportRequest(File.ReadAllText(partner.Certificate)), Stream.Null));

        Assert.Equal(1, treatment.ExitCode);
        Assert.Contains("403", treatment.Error, StringComparison.Ordinal);
        Assert.Single(treatment.Error.Trim().Split('\n'));
        Assert.False(Path.Exists(_work.File("t.tpxe")));
        Assert.False(Path.Exists(_work.File("t.tpxe.partial")));
        Assert.Equal(400, problem.Status);
        Assert.Equal("urn:trustedproxy:problem:invalid-recipient", problem.ProblemType);
        Assert.Equal(400, neither.Status);
        Assert.DoesNotContain(AuditEntries(), e => e["kind"]!.GetValue<string>() is AuditKinds.Export or AuditKinds.Retrieve);
    }

    [Fact]
    public async Task ARecipientWhoseCertificateIsRevoked_IsRefused_BeforeAnythingIsSentOrAudited()
    {
        var handles = await UploadAsync();
        using var former = Proxy.OpenCa().IssueClient("Former Partner", ProxyRole.Consumer, TimeSpan.FromDays(30));
        var researcher = Proxy.Client(ProxyRole.Consumer);
        researcher.PurposeOfUse = "research";
        using (var before = new MemoryStream())
        {
            await researcher.ExportAsync(new ExportRequest(former.CertificatePem, [handles[0]]), before);
            Assert.True(before.Length > 0);
        }

        await Proxy.Client(ProxyRole.Admin).RevokeCertificateAsync(former.Serial, "key-compromise");
        var exports = AuditEntries().Count(e => e["kind"]!.GetValue<string>() == AuditKinds.Export);
        using var after = new MemoryStream();
        var problem = await Assert.ThrowsAsync<TrustedProxyException>(() => researcher.ExportAsync(new ExportRequest(former.CertificatePem, [handles[0]]), after));

        Assert.Equal(400, problem.Status);
        Assert.Equal("urn:trustedproxy:problem:invalid-recipient", problem.ProblemType);
        Assert.Contains("revoked", problem.Detail, StringComparison.Ordinal);
        Assert.Equal(0, after.Length);
        Assert.Equal(exports, AuditEntries().Count(e => e["kind"]!.GetValue<string>() == AuditKinds.Export));
    }

    [Fact]
    public async Task AnExportBeyondTheConfiguredLimits_IsRefusedWith413_BeforeAnythingIsSentOrAudited()
    {
        await using var strict = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["TrustedProxy:Export:MaxRecords"] = "1",
            ["TrustedProxy:Export:MaxBundleBytes"] = "1000",
        });
        var handles = new List<string>();
        foreach (var name in new[] { "CT_small.dcm", "MR_small.dcm" })
        {
            await using var file = File.OpenRead(Path.Combine(DicomCorpus.TestFiles, name));
            handles.Add((await strict.Client(ProxyRole.Producer).UploadAsync(file)).Handle);
        }

        using var member = strict.OpenCa().IssueClient("Research Partner", ProxyRole.Consumer, TimeSpan.FromDays(30));
        var researcher = strict.Client(ProxyRole.Consumer);
        researcher.PurposeOfUse = "research";

        var tooMany = await Assert.ThrowsAsync<TrustedProxyException>(() => researcher.ExportAsync(new ExportRequest(member.CertificatePem, handles), Stream.Null));
        var tooLarge = await Assert.ThrowsAsync<TrustedProxyException>(() => researcher.ExportAsync(new ExportRequest(member.CertificatePem, [handles[0]]), Stream.Null));

        Assert.Equal((413, "urn:trustedproxy:problem:export-too-large"), (tooMany.Status, tooMany.ProblemType));
        Assert.Contains("MaxRecords", tooMany.Detail, StringComparison.Ordinal);
        Assert.Equal((413, "urn:trustedproxy:problem:export-too-large"), (tooLarge.Status, tooLarge.ProblemType));
        Assert.Contains("MaxBundleBytes", tooLarge.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(File.ReadAllLines(Path.Combine(strict.Root, "data", "audit", "audit.log")), l => JsonNode.Parse(l)!["kind"]!.GetValue<string>() == AuditKinds.Export);
    }

    [Fact]
    public async Task AStudy_IsExportedByItsUidInTheCallersView_AndOpensWithThePartnersKey()
    {
        var handles = await UploadAsync();
        var partner = Member("Research Partner");
        var researcher = Proxy.Client(ProxyRole.Consumer);
        researcher.PurposeOfUse = "research";
        var summary = await researcher.GetAsync(handles[0]);

        using var bundle = new MemoryStream();
        await researcher.ExportAsync(new ExportRequest(File.ReadAllText(partner.Certificate), Study: summary.StudyInstanceUid), bundle);
        await File.WriteAllBytesAsync(_work.File("study.tpxe"), bundle.ToArray());
        var opened = await Recipient("open", "study.tpxe", "--key", partner.Key, "--ca", Proxy.Certificates.CaCertificate);

        Assert.True(opened.ExitCode == 0, opened.Error);
        Assert.Equal(await ResearchViewAsync(handles[0]), await File.ReadAllBytesAsync(Path.Combine(_work.File("study"), handles[0] + ".dcm")));
        Assert.Contains("1 record(s)", opened.Output, StringComparison.Ordinal);
    }

    private List<JsonObject> AuditEntries() =>
        File.ReadAllLines(Path.Combine(Proxy.Root, "data", "audit", "audit.log")).Select(l => (JsonObject)JsonNode.Parse(l)!).ToList();

    public void Dispose() => _work.Dispose();
}
