using System.Text.Json;
using TrustedProxy.Dicom;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.DicomWeb;

public sealed class DicomWebTests : ProxyTest
{
    private const string Study = "1.2.826.0.1.3680043.9.7777.1";
    private readonly List<byte[]> _instances = [];

    protected override Task AfterStartAsync()
    {
        for (var series = 1; series <= 2; series++)
        {
            for (var instance = 1; instance <= 2; instance++)
            {
                _instances.Add(new DicomFileBuilder()
                    .Patient("DW-PATIENT-1", "Webster^Dora")
                    .Study(Study, $"{Study}.{series}", "20230615", series == 1 ? "CT" : "MR")
                    .Text(0x0008, 0x0050, "SH", "ACC-42")
                    .Text(0x0020, 0x0011, "IS", series.ToString())
                    .Text(0x0020, 0x0013, "IS", instance.ToString())
                    .Text(0x0028, 0x0301, "CS", "NO")
                    .PixelData(512, seed: series * 10 + instance)
                    .Build());
            }
        }

        return Task.CompletedTask;
    }

    [Fact]
    public async Task StowRs_StoresAStudy_AndAnswersWithEveryInstanceAndEveryFailure()
    {
        var broken = File.ReadAllBytes(Path.Combine(DicomCorpus.TestFiles, "MR_truncated.dcm"));

        var (status, body) = await DicomWebClient.StoreAsync(Proxy.Client(ProxyRole.Producer), "dicomweb/studies", [.. _instances, broken]);

        Assert.Equal(202, status);
        Assert.Equal(4, body.GetProperty("00081199").GetProperty("Value").GetArrayLength());
        var failed = body.GetProperty("00081198").GetProperty("Value")[0];
        Assert.Equal("49152", DicomWebClient.Value(failed, "00081197"));
        Assert.EndsWith($"/dicomweb/studies/{Study}", DicomWebClient.Value(body, "00081190"));
        Assert.Equal(4, (await Proxy.CloudObjectsAsync()).Count);
    }

    [Fact]
    public async Task StowRs_SaysForEachStoredInstance_HowItWasSealed()
    {
        var native = File.ReadAllBytes(Path.Combine(DicomCorpus.TestFiles, "CT_small.dcm"));
        var compressed = File.ReadAllBytes(DicomCorpus.WellFormedPart10.First(f => f.IsCompressed).Path);

        var (status, body) = await DicomWebClient.StoreAsync(Proxy.Client(ProxyRole.Producer), "dicomweb/studies", [native, compressed]);

        Assert.Equal(200, status);
        var stored = body.GetProperty("00081199").GetProperty("Value").EnumerateArray().ToList();
        Assert.All(stored, item => Assert.Equal("TrustedProxy seal", DicomWebClient.Value(item, "00090010")));
        Assert.Equal(["detached", "pixels"], stored.Select(item => DicomWebClient.Value(item, "00091001")).Order());
        Assert.Contains(stored, item => DicomWebClient.Value(item, "00091002")!.Contains("sealed in the pixels", StringComparison.Ordinal));
        Assert.Contains(stored, item => DicomWebClient.Value(item, "00091002")!.Contains("NotNative", StringComparison.Ordinal));
    }

    [Fact]
    public async Task StowRs_ToAStudy_RefusesInstancesOfAnother_With409()
    {
        var (status, body) = await DicomWebClient.StoreAsync(Proxy.Client(ProxyRole.Producer), "dicomweb/studies/1.2.3.4.5.6", _instances);

        Assert.Equal(409, status);
        Assert.All(body.GetProperty("00081198").GetProperty("Value").EnumerateArray(), f => Assert.Equal("43264", DicomWebClient.Value(f, "00081197")));
        Assert.Empty(await Proxy.CloudObjectsAsync());
    }

    [Fact]
    public async Task StowRs_ByAConsumer_IsDenied()
    {
        var (status, _) = await DicomWebClient.StoreAsync(Proxy.Client(ProxyRole.Consumer), "dicomweb/studies", _instances);

        Assert.Equal(403, status);
    }

    [Fact]
    public async Task QidoRs_FindsTheStudy_ByPatientIdAndDateRange_WithItsSeriesAndInstances()
    {
        await StoreAll();
        var consumer = Proxy.Client(ProxyRole.Consumer);

        var (status, studies, _) = await DicomWebClient.GetJsonAsync(consumer, "dicomweb/studies?PatientID=DW-PATIENT-1&StudyDate=20230101-20231231");
        var (_, none, _) = await DicomWebClient.GetJsonAsync(consumer, "dicomweb/studies?PatientID=DW-PATIENT-1&StudyDate=20240101-");
        var (_, byAccession, _) = await DicomWebClient.GetJsonAsync(consumer, "dicomweb/studies?00080050=ACC-42&includefield=00080016");
        var (_, series, _) = await DicomWebClient.GetJsonAsync(consumer, $"dicomweb/studies/{Study}/series");
        var (_, instances, _) = await DicomWebClient.GetJsonAsync(consumer, $"dicomweb/studies/{Study}/series/{Study}.2/instances");
        var (_, page, _) = await DicomWebClient.GetJsonAsync(consumer, $"dicomweb/studies/{Study}/instances?limit=3&offset=2");

        Assert.Equal(200, status);
        Assert.True(byAccession.ValueKind == JsonValueKind.Array, byAccession.GetRawText());
        Assert.True(none.ValueKind == JsonValueKind.Array, none.GetRawText());
        Assert.True(page.ValueKind == JsonValueKind.Array, page.GetRawText());
        var study = Assert.Single(studies.EnumerateArray());
        Assert.Equal(Study, DicomWebClient.Value(study, "0020000D"));
        Assert.Equal("Webster^Dora", DicomWebClient.Value(study, "00100010"));
        Assert.Equal(["CT", "MR"], study.GetProperty("00080061").GetProperty("Value").EnumerateArray().Select(v => v.GetString()));
        Assert.Equal("2", DicomWebClient.Value(study, "00201206"));
        Assert.Equal("4", DicomWebClient.Value(study, "00201208"));
        Assert.Empty(none.EnumerateArray());
        Assert.Single(byAccession.EnumerateArray());
        Assert.Equal(2, series.GetArrayLength());
        Assert.Equal(["CT", "MR"], series.EnumerateArray().Select(s => DicomWebClient.Value(s, "00080060")));
        Assert.Equal(2, instances.GetArrayLength());
        Assert.Equal(2, page.GetArrayLength());
    }

    [Fact]
    public async Task WadoRs_ReturnsTheStudyBitExact_AndDcmtkReadsEveryInstance()
    {
        await StoreAll();

        var (status, parts) = await DicomWebClient.RetrieveAsync(Proxy.Client(ProxyRole.Consumer), $"dicomweb/studies/{Study}");

        Assert.Equal(200, status);
        Assert.Equal(4, parts.Count);
        foreach (var part in parts)
        {
            Assert.Contains(_instances, i => i.AsSpan().SequenceEqual(part));
            Assert.Equal(string.Empty, await DicomWebClient.DcmdumpErrorsAsync(part));
        }

        var (_, series) = await DicomWebClient.RetrieveAsync(Proxy.Client(ProxyRole.Consumer), $"dicomweb/studies/{Study}/series/{Study}.1");
        Assert.Equal(2, series.Count);
    }

    [Fact]
    public async Task WadoRs_Metadata_IsDicomJson_WithoutBulkData()
    {
        await StoreAll();

        var (_, metadata, response) = await DicomWebClient.GetJsonAsync(Proxy.Client(ProxyRole.Consumer), $"dicomweb/studies/{Study}/metadata");

        Assert.Equal("application/dicom+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(4, metadata.GetArrayLength());
        Assert.All(metadata.EnumerateArray(), m => Assert.False(m.TryGetProperty("7FE00010", out _)));
        Assert.Equal("ACC-42", DicomWebClient.Value(metadata[0], "00080050"));
    }

    [Fact]
    public async Task WadoRs_Rendered_IsAPngOfTheFrame()
    {
        var uploaded = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(Path.Combine(DicomCorpus.TestFiles, "CT_small.dcm"));
        var ct = await DicomFile.ReadAsync(Path.Combine(DicomCorpus.TestFiles, "CT_small.dcm"));
        var path = $"dicomweb/studies/{ct.Dataset.GetString(DicomTag.StudyInstanceUid)}/series/{ct.Dataset.GetString(DicomTag.SeriesInstanceUid)}/instances/{ct.Dataset.GetString(DicomTag.SopInstanceUid)}/rendered";

        using var response = await Proxy.Client(ProxyRole.Consumer).SendAsync(new HttpRequestMessage(HttpMethod.Get, path));
        var png = await response.Content.ReadAsByteArrayAsync();

        Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
        Assert.True(png.AsSpan().StartsWith(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }));
        Assert.Equal(128, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.NotNull(uploaded);
    }

    [Fact]
    public async Task ForResearch_QidoAndWado_SpeakOnlyTheDeidentifiedView()
    {
        await StoreAll();
        var researcher = Proxy.Client(ProxyRole.Consumer);

        var (_, studies, _) = await DicomWebClient.GetJsonAsync(researcher, "dicomweb/studies", purpose: "research");
        var study = Assert.Single(studies.EnumerateArray());
        var deidentifiedStudy = DicomWebClient.Value(study, "0020000D")!;
        var pseudonym = DicomWebClient.Value(study, "00100020")!;
        Assert.StartsWith("2.25.", deidentifiedStudy);
        Assert.StartsWith("TP", pseudonym);
        Assert.DoesNotContain("Webster", study.GetRawText());
        Assert.DoesNotContain("DW-PATIENT-1", study.GetRawText());

        var (status, parts) = await DicomWebClient.RetrieveAsync(researcher, $"dicomweb/studies/{deidentifiedStudy}", purpose: "research");
        Assert.Equal(200, status);
        Assert.Equal(4, parts.Count);
        foreach (var part in parts)
        {
            var file = await DicomFile.ReadAsync(new MemoryStream(part));
            Assert.Equal("YES", file.Dataset.GetString(new DicomTag(0x0012, 0x0062)));
            Assert.Equal(deidentifiedStudy, file.Dataset.GetString(DicomTag.StudyInstanceUid));
            Assert.Equal(pseudonym, file.Dataset.GetString(DicomTag.PatientId));
            Assert.Equal(-1, part.AsSpan().IndexOf("Webster"u8));
            Assert.Equal(string.Empty, await DicomWebClient.DcmdumpErrorsAsync(part));
        }

        var (byPseudonym, found, _) = await DicomWebClient.GetJsonAsync(researcher, $"dicomweb/studies?PatientID={pseudonym}", purpose: "research");
        Assert.Single(found.EnumerateArray());

        // Keys the de-identified view cannot match are said to be ignored, not silently dropped.
        var (_, _, unmatched) = await DicomWebClient.GetJsonAsync(researcher, "dicomweb/studies?StudyDate=20200101-20301231&AccessionNumber=ACC1", purpose: "research");
        var warning = string.Join(" ", unmatched.Headers.GetValues("Warning"));
        Assert.Contains("StudyDate (not matched in the de-identified view)", warning);
        Assert.Contains("AccessionNumber (not matched in the de-identified view)", warning);
        var (originalUid, _) = await DicomWebClient.RetrieveAsync(researcher, $"dicomweb/studies/{Study}", purpose: "research");
        Assert.Equal(404, originalUid);
        Assert.Equal(200, byPseudonym);
    }

    [Fact]
    public async Task QidoRs_WithAnUnknownPurpose_IsRefused()
    {
        var (status, _, _) = await DicomWebClient.GetJsonAsync(Proxy.Client(ProxyRole.Consumer), "dicomweb/studies", purpose: "curiosity");

        Assert.Equal(400, status);
    }

    private async Task StoreAll()
    {
        var (status, _) = await DicomWebClient.StoreAsync(Proxy.Client(ProxyRole.Producer), "dicomweb/studies", _instances);
        Assert.Equal(200, status);
    }
}
