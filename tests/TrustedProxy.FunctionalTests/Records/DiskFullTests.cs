using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.FunctionalTests.DicomWeb;
using TrustedProxy.Policy;
using TrustedProxy.Records;

namespace TrustedProxy.FunctionalTests.Records;

/// <summary>
/// The proxy's data directory on a real file system that fills up (a small tmpfs, see
/// <see cref="FullFileSystem"/>): an upload that does not fit is a 507 problem with Retry-After,
/// a STOW-RS part that does not fit fails with Out of Resources beside the parts stored, nothing of
/// either is left behind, and readiness is degraded until space is freed.
/// </summary>
public sealed class DiskFullTests
{
    private const string Study = "1.2.826.0.1.3680043.9.7777.507";

    [Fact]
    public async Task OnAFullDisk_UploadsAre507WithRetryAfter_NothingIsLeft_AndReadinessIsDegradedUntilSpaceIsFreed()
    {
        using var root = new TemporaryDirectory();
        using var disk = FullFileSystem.Mount(Path.Combine(root.Path, "data"), 48L << 20);
        await using var proxy = await ProxyHost.StartAsync(root: root.Path);
        var producer = proxy.Client(ProxyRole.Producer);
        await producer.UploadAsync(new MemoryStream(Instance(0, pixels: 4096)));
        var index = proxy.Services.GetRequiredService<RecordIndex>();
        var objects = (await proxy.CloudObjectsAsync()).Count;
        Assert.Equal("Healthy", await StatusAsync(proxy, ProxyRole.Producer));

        disk.FillLeaving(1 << 20);
        var large = Instance(1, pixels: 6 << 20);
        using (var refused = await producer.SendAsync(Upload(large)))
        {
            Assert.Equal(HttpStatusCode.InsufficientStorage, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            Assert.Equal("urn:trustedproxy:problem:insufficient-storage", JsonNode.Parse(await refused.Content.ReadAsStringAsync())!["type"]!.GetValue<string>());
            Assert.Equal(TimeSpan.FromSeconds(60), refused.Headers.RetryAfter?.Delta);
        }

        AssertNothingLeft(proxy, index, records: 1);
        Assert.Equal(objects, (await proxy.CloudObjectsAsync()).Count);

        // Members learn only that the proxy is degraded; administrators see why.
        using (var member = await proxy.Client(ProxyRole.Producer).SendAsync(new HttpRequestMessage(HttpMethod.Get, "healthz")))
        {
            var body = JsonNode.Parse(await member.Content.ReadAsStringAsync())!.AsObject();
            Assert.Equal("Degraded", body["status"]!.GetValue<string>());
            Assert.Equal(["status"], body.Select(p => p.Key));
        }

        var check = (await HealthAsync(proxy, ProxyRole.Admin))["checks"]!["local-disk"]!;
        Assert.Equal("Degraded", check["status"]!.GetValue<string>());
        Assert.Contains("507", check["description"]!.GetValue<string>(), StringComparison.Ordinal);

        // STOW-RS: the part that fits is stored, the one that does not fails with Out of Resources (0xA700).
        using (var stow = await producer.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"dicomweb/studies/{Study}") { Content = DicomWebClient.StowContent([Instance(2, pixels: 4096), Instance(3, pixels: 6 << 20)]) }))
        {
            Assert.Equal(HttpStatusCode.Accepted, stow.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(60), stow.Headers.RetryAfter?.Delta);
            var answer = JsonDocument.Parse(await stow.Content.ReadAsStringAsync()).RootElement;
            var stored = Assert.Single(answer.GetProperty("00081199").GetProperty("Value").EnumerateArray());
            Assert.Equal($"{Study}.2", DicomWebClient.Value(stored, "00081155"));
            var failed = Assert.Single(answer.GetProperty("00081198").GetProperty("Value").EnumerateArray());
            Assert.Equal("42752", DicomWebClient.Value(failed, "00081197")); // 0xA700 Out of Resources
            Assert.Equal("insufficient-storage", DicomWebClient.Value(failed, "00091101"));
        }

        AssertNothingLeft(proxy, index, records: 2);
        Assert.Equal("Degraded", await StatusAsync(proxy, ProxyRole.Producer));

        disk.Free();
        Assert.Equal("Healthy", await StatusAsync(proxy, ProxyRole.Producer));
        Assert.Equal("Healthy", (await HealthAsync(proxy, ProxyRole.Admin))["checks"]!["local-disk"]!["status"]!.GetValue<string>());
        await producer.UploadAsync(new MemoryStream(large));
        Assert.Equal(3, await index.CountAsync());
    }

    private static void AssertNothingLeft(ProxyHost proxy, RecordIndex index, long records)
    {
        Assert.Equal(records, index.CountAsync().GetAwaiter().GetResult());
        Assert.Empty(Directory.GetFiles(Path.Combine(proxy.Root, "data", "staging")));
    }

    private static HttpRequestMessage Upload(byte[] file)
    {
        var content = new ByteArrayContent(file);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        return new HttpRequestMessage(HttpMethod.Post, "api/v1/records") { Content = content };
    }

    private static async Task<JsonNode> HealthAsync(ProxyHost proxy, ProxyRole role)
    {
        using var response = await proxy.Client(role).SendAsync(new HttpRequestMessage(HttpMethod.Get, "healthz"));
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    private static async Task<string> StatusAsync(ProxyHost proxy, ProxyRole role) =>
        (await HealthAsync(proxy, role))["status"]!.GetValue<string>();

    private static byte[] Instance(int i, int pixels) => new DicomFileBuilder($"{Study}.{i}")
        .Patient("FULL-DISK", "Full^Disk")
        .Study(Study, $"{Study}.1", "20240507", "CT")
        .PixelData(pixels, seed: i)
        .Build();
}
