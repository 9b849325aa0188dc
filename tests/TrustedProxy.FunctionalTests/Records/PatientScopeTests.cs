using System.Text.Json.Nodes;
using TrustedProxy.Audit;
using TrustedProxy.Client;
using TrustedProxy.Dicom;
using TrustedProxy.FunctionalTests.DicomWeb;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Records;

/// <summary>
/// Patient pseudonyms are scoped by Issuer of Patient ID, else by the uploading organisation: two
/// hospitals whose patients share a medical record number do not become one patient, unless the
/// federation configures linkage, which the audit log records at start-up.
/// </summary>
public sealed class PatientScopeTests : ProxyTest
{
    private const string Linkage = "TrustedProxy:Pseudonymization:LinkPatientsAcrossOrganisations";

    private static DicomFileBuilder Instance(string patientId, string study, string? issuer = null)
    {
        var file = new DicomFileBuilder().Patient(patientId, "Same^Number").Study(study, study + ".1", "20240105", "MR").Text(0x0028, 0x0301, "CS", "NO");
        return issuer is null ? file : file.Text(0x0010, 0x0021, "LO", issuer);
    }

    [Fact]
    public async Task OneMedicalRecordNumberAtTwoHospitals_IsTwoPatients_InSearchesAndTheDeidentifiedView()
    {
        using var stOlav = Proxy.OpenCa().IssueClient("St Olav", ProxyRole.Producer, TimeSpan.FromDays(1));
        var local = Proxy.Client(ProxyRole.Producer);
        var first = await local.UploadAsync(new MemoryStream(Instance("MRN-1", "1.2.3.501").Build()));
        var second = await local.UploadAsync(new MemoryStream(Instance("MRN-1", "1.2.3.502").Build()));
        var other = await Proxy.Client(stOlav.Certificate).UploadAsync(new MemoryStream(Instance("MRN-1", "1.2.3.503").Build()));
        var issued = await Proxy.Client(stOlav.Certificate).UploadAsync(new MemoryStream(Instance("MRN-1", "1.2.3.504", issuer: "ST-OLAV-MRN").Build()));
        var consumer = Proxy.Client(ProxyRole.Consumer);
        var researcher = Proxy.Client(ProxyRole.Consumer);
        researcher.PurposeOfUse = "research";

        // A search by Patient ID alone finds every record with that ID, each naming its own patient.
        var found = (await consumer.SearchAsync(new RecordSearch { PatientId = "MRN-1" })).Items;
        Assert.Equal(4, found.Count);
        var patientOf = found.ToDictionary(r => r.Handle, r => r.PatientPseudonym);
        Assert.Equal(patientOf[first.Handle], patientOf[second.Handle]);
        Assert.Equal(3, patientOf.Values.Distinct().Count());

        // With the issuer, one patient.
        var ofIssuer = (await consumer.SearchAsync(new RecordSearch { PatientId = "MRN-1", IssuerOfPatientId = "ST-OLAV-MRN" })).Items;
        Assert.Equal(issued.Handle, Assert.Single(ofIssuer).Handle);
        var (status, studies, _) = await DicomWebClient.GetJsonAsync(consumer, "dicomweb/studies?PatientID=MRN-1");
        var (_, studiesOfIssuer, _) = await DicomWebClient.GetJsonAsync(consumer, "dicomweb/studies?PatientID=MRN-1&IssuerOfPatientID=ST-OLAV-MRN");
        Assert.Equal(200, status);
        Assert.Equal(4, studies.GetArrayLength());
        Assert.Equal("1.2.3.504", Assert.Single(studiesOfIssuer.EnumerateArray()).GetProperty("0020000D").GetProperty("Value")[0].GetString());

        // The research pseudonyms split the same way.
        var research = new Dictionary<string, string?>();
        foreach (var handle in new[] { first.Handle, second.Handle, other.Handle, issued.Handle })
        {
            research[handle] = (await researcher.GetAsync(handle)).PatientPseudonym;
        }

        Assert.Equal(research[first.Handle], research[second.Handle]);
        Assert.Equal(3, research.Values.Distinct().Count());
        Assert.Equal(2, (await researcher.SearchAsync(new RecordSearch { PatientId = research[first.Handle] })).Items.Count);
        Assert.DoesNotContain(AuditEntries(), e => e["kind"]!.GetValue<string>() == AuditKinds.PatientLinkage);
    }

    [Fact]
    public async Task WithLinkageConfigured_OneMedicalRecordNumberIsOnePatient_AndEveryStartSaysSo()
    {
        await Proxy.StopAsync();
        await Proxy.StartAgainAsync(new Dictionary<string, string?> { [Linkage] = "true" });
        using var stOlav = Proxy.OpenCa().IssueClient("St Olav", ProxyRole.Producer, TimeSpan.FromDays(1));
        var local = await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(Instance("MRN-2", "1.2.3.601").Build()));
        var other = await Proxy.Client(stOlav.Certificate).UploadAsync(new MemoryStream(Instance("MRN-2", "1.2.3.602").Build()));
        var consumer = Proxy.Client(ProxyRole.Consumer);
        var researcher = Proxy.Client(ProxyRole.Consumer);
        researcher.PurposeOfUse = "research";

        var found = (await consumer.SearchAsync(new RecordSearch { PatientId = "MRN-2" })).Items;
        Assert.Equal(2, found.Count);
        Assert.Single(found.Select(r => r.PatientPseudonym).Distinct());
        Assert.Equal((await researcher.GetAsync(local.Handle)).PatientPseudonym, (await researcher.GetAsync(other.Handle)).PatientPseudonym);
        var linkage = Assert.Single(AuditEntries(), e => e["kind"]!.GetValue<string>() == AuditKinds.PatientLinkage);
        Assert.Equal(Linkage, linkage["data"]!["setting"]!.GetValue<string>());
    }

    private List<JsonNode> AuditEntries() =>
        File.ReadAllLines(Path.Combine(Proxy.Root, "data", "audit", "audit.log")).Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!).ToList();
}
