using System.Text.Json;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Hosting;

public sealed class EndpointTests : ProxyTest
{
    [Fact]
    public async Task TheOpenApiDocument_DescribesTheRecordsApi()
    {
        using var response = await Proxy.Client(ProxyRole.Consumer).SendAsync(new HttpRequestMessage(HttpMethod.Get, "openapi/v1.json"));
        var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        var paths = document.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("/api/v1/records", paths);
        Assert.Contains("/api/v1/records/{handle}/content", paths);
        Assert.Contains("/api/v1/ca/certificates/{serial}/revoke", paths);
    }

    [Fact]
    public async Task Health_ReportsTheIndexTheBackendTheUploadCacheTheCrlAndTheLocalDisk_ToAnAdministrator()
    {
        using var response = await Proxy.Client(ProxyRole.Admin).SendAsync(new HttpRequestMessage(HttpMethod.Get, "healthz"));
        var report = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal("Healthy", report.GetProperty("status").GetString());
        Assert.Equal(["audit-witness", "backend", "backup", "crl", "index", "local-disk", "upload-cache"], report.GetProperty("checks").EnumerateObject().Select(p => p.Name).Order());
        var cache = report.GetProperty("checks").GetProperty("upload-cache").GetProperty("data");
        Assert.Equal(0, cache.GetProperty("waitingBlocks").GetInt32());
        Assert.True(cache.TryGetProperty("dummyBlocks", out _));
    }

    [Theory]
    [InlineData(ProxyRole.Consumer)]
    [InlineData(ProxyRole.Producer)]
    [InlineData(ProxyRole.Compliance)]
    public async Task Health_TellsAMemberOnlyThatTheProxyIsAlive_WithNoCounts(ProxyRole role)
    {
        await Proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(new DicomFileBuilder().Patient("HEALTH-1", "Health^Check").PixelData(2048, seed: 3).Build()));

        using var response = await Proxy.Client(role).SendAsync(new HttpRequestMessage(HttpMethod.Get, "healthz"));
        var text = await response.Content.ReadAsStringAsync();
        var report = JsonDocument.Parse(text).RootElement;

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal(["status"], report.EnumerateObject().Select(p => p.Name));
        Assert.Equal("Healthy", report.GetProperty("status").GetString());
        Assert.DoesNotContain("record(s)", text);
        Assert.DoesNotContain("Blocks", text);
    }

    [Fact]
    public async Task Health_TurnsUnhealthy_WhenTheCrlBecomesInvalid()
    {
        var crl = File.ReadAllBytes(Proxy.Certificates.Crl);
        crl[^3] ^= 1;
        File.WriteAllBytes(Proxy.Certificates.Crl, crl);
        try
        {
            // The handshake now fails for everyone, including the health probe itself: fail closed.
            await Assert.ThrowsAsync<HttpRequestException>(() => Proxy.Client(ProxyRole.Consumer).WhoAmIAsync());
        }
        finally
        {
            crl[^3] ^= 1;
            File.WriteAllBytes(Proxy.Certificates.Crl, crl);
        }

        Assert.Equal("consumer", (await Proxy.Client(ProxyRole.Consumer).WhoAmIAsync()).Role);
    }
}
