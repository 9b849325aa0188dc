using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Watermarking;

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

    [Fact]
    public async Task Rendered_OfAMammogram_IsRefusedNamingTheMammographyRule_WhileTheSameConsumerGetsTheCtRendered()
    {
        await StoreAsync([Instance(1, "CT"), Instance(2, "MG")]);
        var local = Proxy.Client(ProxyRole.Consumer);

        var ct = await RenderAsync(local, 1);
        var mammogram = await RenderAsync(local, 2);

        // The local hospital's consumer gets unmarked CT originals, so their render; a mammogram leaves fingerprinted or not at all.
        Assert.Equal((200, "image/png"), (ct.Status, ct.ContentType));
        Assert.Equal((403, "application/problem+json"), (mammogram.Status, mammogram.ContentType));
        var problem = JsonDocument.Parse(mammogram.Body).RootElement;
        Assert.Equal("urn:trustedproxy:problem:fingerprint-required", problem.GetProperty("type").GetString());
        Assert.Equal("mammograms-always-fingerprinted", problem.GetProperty("rule").GetString());
        Assert.Contains("rule mammograms-always-fingerprinted", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rendered_ToAConsumerOfAnotherOrganisation_IsRefusedNamingTheConsumerRule()
    {
        await StoreAsync([Instance(1, "CT")]);

        var (status, contentType, body) = await RenderAsync(ConsumerOf("St Olav"), 1);

        Assert.Equal((403, "application/problem+json"), (status, contentType));
        Assert.Equal("consumer-copies-fingerprinted", JsonDocument.Parse(body).RootElement.GetProperty("rule").GetString());
    }

    [Fact]
    public async Task Rendered_HoldsNoMoreThanTheInMemoryLimit_AndAnInstanceThatStreamsRendersAsOneRestoredInMemory()
    {
        const string Limit = "TrustedProxy:Watermarking:MaxInMemoryBytes";
        var sealedInPixels = Render(1);
        await StoreAsync([sealedInPixels]);

        // Past the limit every record is refused a render, before anything is read.
        await Proxy.StopAsync();
        await Proxy.StartAgainAsync(new Dictionary<string, string?> { [Limit] = "1024" });
        var tooLarge = await RenderAsync(Proxy.Client(ProxyRole.Consumer), 1);
        Assert.Equal((406, "application/problem+json"), (tooLarge.Status, tooLarge.ContentType));
        Assert.Equal("urn:trustedproxy:problem:render-too-large", JsonDocument.Parse(tooLarge.Body).RootElement.GetProperty("type").GetString());

        // Stored while the limit was low, the same pixels are sealed over the whole file and stream
        // out when read; under the default limit they are parsed as they stream, to the same PNG.
        await StoreAsync([Render(2)]);
        await Proxy.StopAsync();
        await Proxy.StartAgainAsync(new Dictionary<string, string?> { [Limit] = null });
        var index = Proxy.Services.GetRequiredService<RecordIndex>();
        Assert.Equal(RecordSealKind.Pixels, Assert.Single(await index.FindInstanceAsync("Local Hospital", $"{Study}.1.1")).Seal);
        Assert.Equal(RecordSealKind.WholeFile, Assert.Single(await index.FindInstanceAsync("Local Hospital", $"{Study}.1.2")).Seal);
        var restored = await RenderAsync(Proxy.Client(ProxyRole.Consumer), 1);
        var streamed = await RenderAsync(Proxy.Client(ProxyRole.Consumer), 2);

        Assert.Equal((200, "image/png"), (restored.Status, restored.ContentType));
        Assert.Equal((200, "image/png"), (streamed.Status, streamed.ContentType));
        Assert.Equal(restored.Body, streamed.Body);

        // Two instances with one image (seed 7), so that their renders must be equal.
        static byte[] Render(int i) => new DicomFileBuilder($"{Study}.1.{i}")
            .Patient("WADO-MARK", "Marked^Mona")
            .Study(Study, $"{Study}.1", "20240303", "CT")
            .Image(256, 256, seed: 7)
            .Build();
    }

    private static async Task<(int Status, string? ContentType, byte[] Body)> RenderAsync(TrustedProxyClient client, int instance)
    {
        using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"dicomweb/studies/{Study}/series/{Study}.1/instances/{Study}.1.{instance}/rendered"));
        return ((int)response.StatusCode, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsByteArrayAsync());
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
