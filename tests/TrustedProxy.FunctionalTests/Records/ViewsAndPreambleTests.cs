using TrustedProxy.Client;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Records;

public sealed class ViewsAndPreambleTests : ProxyTest
{
    private static byte[] WithExecutablePreamble(byte[] file)
    {
        var polyglot = (byte[])file.Clone();
        "MZ"u8.CopyTo(polyglot);
        polyglot[60] = 0x80; // e_lfanew, as a PE header has it
        return polyglot;
    }

    [Fact]
    public async Task AFileWithAnExecutablePreamble_IsStoredWithTheHeaderZeroed_AndTheAnswerSaysSo()
    {
        var original = new DicomFileBuilder().Patient("PE-1", "Poly^Glot").Build();

        var result = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(WithExecutablePreamble(original)));
        using var back = new MemoryStream();
        await Proxy.Client(ProxyRole.Consumer).FetchAsync(result.Handle, back);

        Assert.Contains(result.Warnings!, w => w.Contains("PE") && w.Contains("zeroed") && w.Contains("CVE-2019-11687"));
        Assert.True(original.AsSpan().SequenceEqual(back.ToArray()), "the stored file is the original with a zero preamble");
    }

    [Fact]
    public async Task WithTheRefusePolicy_AFileWithAnExecutablePreamble_IsRefused()
    {
        await using var strict = await ProxyHost.StartAsync(settings: new Dictionary<string, string?> { ["TrustedProxy:Dicom:ExecutablePreamble"] = "Refuse" });

        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => strict.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(WithExecutablePreamble(new DicomFileBuilder().Build()))));

        Assert.Equal(400, error.Status);
        Assert.Equal("urn:trustedproxy:problem:executable-preamble", error.ProblemType);
        Assert.Contains("refused", error.Detail);
        Assert.Empty(await strict.CloudObjectsAsync());
    }

    [Fact]
    public async Task ForResearch_TheRecordsApiGivesTheDeidentifiedView_ForTreatmentTheOriginal()
    {
        var file = new DicomFileBuilder().Patient("VIEW-1", "Visible^Vera").Study("1.2.3.9", "1.2.3.9.1", "20210303", "CT").Text(0x0028, 0x0301, "CS", "NO").PixelData(256).Build();
        var upload = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file));
        var researcher = Proxy.Client(ProxyRole.Consumer);
        researcher.PurposeOfUse = "research";

        using var research = new MemoryStream();
        await researcher.FetchAsync(upload.Handle, research);
        var summary = await researcher.GetAsync(upload.Handle);
        using var treatment = new MemoryStream();
        await Proxy.Client(ProxyRole.Consumer).FetchAsync(upload.Handle, treatment);

        var deidentified = await DicomFile.ReadAsync(new MemoryStream(research.ToArray()));
        Assert.Equal("YES", deidentified.Dataset.GetString(new DicomTag(0x0012, 0x0062)));
        Assert.Equal(-1, research.ToArray().AsSpan().IndexOf("Visible^Vera"u8));
        Assert.StartsWith("deidentified:", summary.View);
        Assert.StartsWith("2.25.", summary.StudyInstanceUid);
        Assert.Equal(deidentified.Dataset.GetString(DicomTag.PatientId), summary.PatientPseudonym);
        Assert.Null(summary.OriginOrganisation);
        Assert.True(file.AsSpan().SequenceEqual(treatment.ToArray()));

        var decisions = await Proxy.Client(ProxyRole.Compliance).SendAsync(new HttpRequestMessage(HttpMethod.Get, "api/v1/audit/decisions"));
        var fetched = System.Text.Json.JsonDocument.Parse(await decisions.Content.ReadAsStringAsync()).RootElement.EnumerateArray()
            .First(d => d.GetProperty("purpose").GetString() == "research" && d.GetProperty("resource").GetString()!.EndsWith("/content", StringComparison.Ordinal));
        Assert.Contains("de-identified view (rule research-deidentified)", fetched.GetProperty("reason").GetString());
        Assert.Equal("research-deidentified", fetched.GetProperty("explanation").GetProperty("obligations").GetProperty("viewBy").GetString());
    }

    [Fact]
    public async Task TheSamePatientIdFromTwoHospitals_IsTwoResearchPatients_AndStudyUidsMatchOnlyWhereTheOriginalsDid()
    {
        using var stOlav = Proxy.OpenCa().IssueClient("St Olav", ProxyRole.Producer, TimeSpan.FromDays(1));
        DicomFileBuilder Instance(string study) =>
            new DicomFileBuilder().Patient("SHARED-7", "Shared^Sam").Study(study, study + ".1", "20200101", "MR").Text(0x0028, 0x0301, "CS", "NO");
        var fromLocal = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(Instance("1.2.3.77").Build()));
        var fromStOlavSameStudy = await Proxy.Client(stOlav.Certificate).UploadAsync(new MemoryStream(Instance("1.2.3.77").Build()));
        var fromStOlavOtherStudy = await Proxy.Client(stOlav.Certificate).UploadAsync(new MemoryStream(Instance("1.2.3.88").Build()));
        var researcher = Proxy.Client(ProxyRole.Consumer);
        researcher.PurposeOfUse = "research";

        var a = await researcher.GetAsync(fromLocal.Handle);
        var b = await researcher.GetAsync(fromStOlavSameStudy.Handle);
        var c = await researcher.GetAsync(fromStOlavOtherStudy.Handle);

        // A medical record number is the hospital's: without linkage configured, two hospitals' SHARED-7 are two patients.
        Assert.NotEqual(a.PatientPseudonym, b.PatientPseudonym);
        Assert.Equal(b.PatientPseudonym, c.PatientPseudonym);
        Assert.Equal(a.StudyInstanceUid, b.StudyInstanceUid);
        Assert.NotEqual(a.StudyInstanceUid, c.StudyInstanceUid);
        Assert.NotEqual(a.SopInstanceUid, b.SopInstanceUid);
        Assert.Single((await researcher.SearchAsync(new RecordSearch { PatientId = a.PatientPseudonym })).Items);
        Assert.Equal(2, (await researcher.SearchAsync(new RecordSearch { PatientId = b.PatientPseudonym })).Items.Count);
    }

    [Fact]
    public async Task OnDemand_AnyReaderMayAskForTheDeidentifiedView()
    {
        var upload = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("VIEW-2", "Asked^Anna").Text(0x0028, 0x0301, "CS", "NO").Build()));

        using var fetched = new MemoryStream();
        await Proxy.Client(ProxyRole.Consumer).FetchAsync(upload.Handle, fetched, deidentified: true);

        Assert.Equal(-1, fetched.ToArray().AsSpan().IndexOf("Asked^Anna"u8));
    }

    [Fact]
    public async Task ForResearch_AnImageWithBurnedInText_IsRefusedWithAReason()
    {
        var upload = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("BURN-1", "Burned^Bo").Text(0x0008, 0x0060, "CS", "US").PixelData(64).Build()));
        var researcher = Proxy.Client(ProxyRole.Consumer);
        researcher.PurposeOfUse = "research";

        var error = await Assert.ThrowsAsync<TrustedProxyException>(() => researcher.FetchAsync(upload.Handle, Stream.Null));

        Assert.Equal(422, error.Status);
        Assert.Equal("urn:trustedproxy:problem:deidentification-refused", error.ProblemType);
        Assert.Contains("burned-in", error.Detail);
    }

    [Fact]
    public async Task AnUnknownProfile_IsABadRequest()
    {
        var upload = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Build()));

        using var response = await Proxy.Client(ProxyRole.Consumer).SendAsync(new HttpRequestMessage(HttpMethod.Get, $"api/v1/records/{upload.Handle}?profile=nonexistent"));

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Contains("unknown-deidentification-profile", await response.Content.ReadAsStringAsync());
    }
}
