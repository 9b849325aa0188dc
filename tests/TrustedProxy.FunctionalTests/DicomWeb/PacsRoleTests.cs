using System.Security.Cryptography.X509Certificates;
using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.DicomWeb;

/// <summary>
/// A PACS archives and retrieves with one certificate (role pacs): under the shipped policy it
/// stores its organisation's studies and reads them back, and reads the federation's records as a
/// consumer does, with the same obligations (fingerprints outside the local hospital).
/// </summary>
public sealed class PacsRoleTests : ProxyTest
{
    private const string Study = "1.2.826.0.1.3680043.9.7777.17";

    [Fact]
    public async Task OnePacsCertificate_StoresAStudyWithStow_AndRetrievesItWithWado_BitExact()
    {
        var files = Instances("PACS-1");
        var pacs = Proxy.Client(ProxyRole.Pacs);

        var (stored, _) = await DicomWebClient.StoreAsync(pacs, "dicomweb/studies", files);
        var (status, parts) = await DicomWebClient.RetrieveAsync(pacs, $"dicomweb/studies/{Study}");

        Assert.Equal(200, stored);
        Assert.Equal(200, status);
        Assert.Equal(files.Count, parts.Count);
        Assert.All(parts, p => Assert.Contains(files, f => f.AsSpan().SequenceEqual(p)));
    }

    [Fact]
    public async Task APacsOfAnotherOrganisation_ReadsTheFederationsRecordsFingerprinted_AndArchivesItsOwn()
    {
        await DicomWebClient.StoreAsync(Proxy.Client(ProxyRole.Producer), "dicomweb/studies", Instances("PACS-2"));
        using var credential = Proxy.OpenCa().IssueClient("St Olav", ProxyRole.Pacs, TimeSpan.FromDays(1));
        var stOlav = Proxy.Client(X509CertificateLoader.LoadPkcs12(credential.ExportPkcs12("x"), "x"));

        var (status, _, parts) = await DicomWebClient.RetrievePartsAsync(stOlav, $"dicomweb/studies/{Study}");
        var own = new DicomFileBuilder("1.2.826.0.1.3680043.9.7777.18.1.1").Patient("PACS-3", "Own^Olga").Study("1.2.826.0.1.3680043.9.7777.18", "1.2.826.0.1.3680043.9.7777.18.1", "20240404", "CT").PixelData(1024).Build();
        var (stored, _) = await DicomWebClient.StoreAsync(stOlav, "dicomweb/studies", [own]);
        var (ownStatus, ownParts) = await DicomWebClient.RetrieveAsync(stOlav, "dicomweb/studies/1.2.826.0.1.3680043.9.7777.18");
        var (deleteStatus, _) = await DeleteAsync(stOlav);

        Assert.Equal(200, status);
        Assert.Equal(2, parts.Count);
        Assert.All(parts, p => Assert.Contains("\r\nWatermark: fingerprinted\r\n", p.Headers, StringComparison.Ordinal));
        Assert.Equal(200, stored);
        Assert.Equal(200, ownStatus);
        Assert.Equal(own, Assert.Single(ownParts));
        Assert.Equal(403, deleteStatus);
    }

    private static async Task<(int Status, string Body)> DeleteAsync(TrustedProxyClient client)
    {
        var handle = (await client.SearchAsync(new RecordSearch { StudyInstanceUid = Study })).Items[0].Handle;
        using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"api/v1/records/{handle}"));
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static List<byte[]> Instances(string patient) => [.. Enumerable.Range(1, 2).Select(i => new DicomFileBuilder($"{Study}.1.{i}")
        .Patient(patient, "Archive^Anna")
        .Study(Study, $"{Study}.1", "20240404", "CT")
        .Text(0x0020, 0x0013, "IS", i.ToString())
        .Image(256, 256, seed: i)
        .Build())];
}
