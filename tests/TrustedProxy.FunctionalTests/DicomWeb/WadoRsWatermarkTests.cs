using System.Security.Cryptography.X509Certificates;
using TrustedProxy.Client;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.DicomWeb;

/// <summary>WADO-RS says whether each copy carries a fingerprint, as the records API does (header Watermark).</summary>
public sealed class WadoRsWatermarkTests : ProxyTest
{
    private const string Study = "1.2.826.0.1.3680043.9.7777.16";

    [Fact]
    public async Task WadoRs_ToAConsumerOfAnotherOrganisation_SaysEveryCopyIsFingerprinted()
    {
        var files = new[] { Instance(1, "CT"), Instance(2, "CT") };
        await StoreAsync(files);
        var stOlav = ConsumerOf("St Olav");

        var (status, watermark, parts) = await DicomWebClient.RetrievePartsAsync(stOlav, $"dicomweb/studies/{Study}");
        var (_, single, _) = await DicomWebClient.RetrievePartsAsync(stOlav, $"dicomweb/studies/{Study}/series/{Study}.1/instances/{Study}.1.1");

        Assert.Equal(200, status);

        // A study's parts say it each (they are opened after the response starts); one instance's response says it too.
        Assert.Null(watermark);
        Assert.Equal("fingerprinted", single);
        Assert.Equal(2, parts.Count);
        Assert.All(parts, p => Assert.Contains("\r\nWatermark: fingerprinted\r\n", p.Headers, StringComparison.Ordinal));
        Assert.All(parts, p => Assert.DoesNotContain(files, f => f.AsSpan().SequenceEqual(p.Body)));
    }

    [Fact]
    public async Task WadoRs_ToTheLocalConsumer_SaysUnmarked_AndInAMixedStudy_EachPartSaysWhich()
    {
        var ct = Instance(1, "CT");
        var mammogram = Instance(2, "MG");
        await StoreAsync([ct, mammogram]);
        var local = Proxy.Client(ProxyRole.Consumer);

        var (_, ctOnly, ctParts) = await DicomWebClient.RetrievePartsAsync(local, $"dicomweb/studies/{Study}/series/{Study}.1/instances/{Study}.1.1");
        var (status, watermark, parts) = await DicomWebClient.RetrievePartsAsync(local, $"dicomweb/studies/{Study}");

        Assert.Equal("unmarked", ctOnly);
        Assert.Equal(ct, Assert.Single(ctParts).Body);
        Assert.Equal(200, status);
        Assert.Null(watermark);
        var unmarked = Assert.Single(parts, p => p.Headers.Contains("\r\nWatermark: unmarked\r\n", StringComparison.Ordinal));
        var fingerprinted = Assert.Single(parts, p => p.Headers.Contains("\r\nWatermark: fingerprinted\r\n", StringComparison.Ordinal));
        Assert.Equal(ct, unmarked.Body);
        Assert.NotEqual(mammogram, fingerprinted.Body);
    }

    private async Task StoreAsync(byte[][] files)
    {
        var (status, _) = await DicomWebClient.StoreAsync(Proxy.Client(ProxyRole.Producer), "dicomweb/studies", files);
        Assert.Equal(200, status);
    }

    /// <summary>A consumer of another organisation than the local hospital: the shipped policy fingerprints its copies.</summary>
    private TrustedProxyClient ConsumerOf(string organisation)
    {
        using var credential = Proxy.OpenCa().IssueClient(organisation, ProxyRole.Consumer, TimeSpan.FromDays(1));
        return Proxy.Client(X509CertificateLoader.LoadPkcs12(credential.ExportPkcs12("x"), "x"));
    }

    private static byte[] Instance(int i, string modality) => new DicomFileBuilder($"{Study}.1.{i}")
        .Patient("WADO-MARK", "Marked^Mona")
        .Study(Study, $"{Study}.1", "20240303", modality)
        .Text(0x0020, 0x0013, "IS", i.ToString())
        .Image(256, 256, seed: i)
        .Build();
}
