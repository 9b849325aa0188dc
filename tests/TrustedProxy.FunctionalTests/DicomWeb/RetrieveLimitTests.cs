using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.DicomWeb;

/// <summary>
/// WADO-RS answers what it was asked for or says why not: a retrieval larger than
/// <c>TrustedProxy:Records:MaxRetrieveInstances</c> is refused, never answered with the first
/// instances only (a PACS would take a study cut short for the whole study), and a request for parts
/// other than DICOM (bulk data, rendered) is 406, not answered with DICOM parts.
/// </summary>
public sealed class RetrieveLimitTests
{
    private const string Study = "1.2.826.0.1.3680043.9.7777.81";

    [Fact]
    public async Task AStudyLargerThanTheRetrieveLimit_IsRefusedAsSuch_WhileASeriesWithinItComesWhole()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?> { ["TrustedProxy:Records:MaxRetrieveInstances"] = "2" });
        var files = new[] { ".1", ".1", ".2" }.Select((series, i) => new DicomFileBuilder().Patient("LIMIT1", "Retrieve^Limit").Study(Study, Study + series, "20261207", "CT").PixelData(2_000, seed: 90 + i).Build()).ToList();
        var (stored, _) = await DicomWebClient.StoreAsync(proxy.Client(ProxyRole.Producer), "dicomweb/studies", files);
        Assert.Equal(200, stored);
        var consumer = proxy.Client(ProxyRole.Consumer);

        using var request = new HttpRequestMessage(HttpMethod.Get, $"dicomweb/studies/{Study}");
        request.Headers.Accept.ParseAdd("multipart/related; type=\"application/dicom\"; transfer-syntax=*");
        using var response = await consumer.SendAsync(request);
        var status = (int)response.StatusCode;
        var body = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var (series, parts) = await DicomWebClient.RetrieveAsync(consumer, $"dicomweb/studies/{Study}/series/{Study}.1");

        Assert.Equal(413, status);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.EndsWith("retrieve-too-large", body.GetProperty("type").GetString());
        Assert.Contains("more than 2 instances", body.GetProperty("detail").GetString());
        Assert.Equal(200, series);
        Assert.Equal(files.Take(2).Select(Convert.ToHexString).Order(), parts.Select(Convert.ToHexString).Order());
    }

    [Theory]
    [InlineData("multipart/related; type=\"application/octet-stream\"", 406)]
    [InlineData("multipart/related; type=\"image/jpeg\"", 406)]
    [InlineData("multipart/related; type=\"application/octet-stream\", multipart/related; type=\"application/dicom\"", 200)]
    [InlineData("multipart/related; type=\"application/dicom\"", 200)]
    [InlineData("multipart/related", 200)]
    [InlineData("*/*", 200)]
    public async Task ARetrievalAskingForPartsOtherThanDicom_IsNotAcceptable(string accept, int expected)
    {
        await using var proxy = await ProxyHost.StartAsync();
        var file = new DicomFileBuilder().Patient("ACCEPT1", "Accept^Type").Study(Study, Study + ".9", "20261207", "CT").PixelData(2_000, seed: 99).Build();
        var (stored, _) = await DicomWebClient.StoreAsync(proxy.Client(ProxyRole.Producer), "dicomweb/studies", [file]);
        Assert.Equal(200, stored);

        using var request = new HttpRequestMessage(HttpMethod.Get, $"dicomweb/studies/{Study}");
        request.Headers.TryAddWithoutValidation("Accept", accept);
        using var response = await proxy.Client(ProxyRole.Consumer).SendAsync(request);

        Assert.Equal(expected, (int)response.StatusCode);
        Assert.Equal(expected == 200 ? "multipart/related" : "application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }
}
