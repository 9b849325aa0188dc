using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using TrustedProxy.FunctionalTests.UploadCache;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Hosting;

/// <summary>
/// The Prometheus scrape endpoint on the real server: administrators read the proxy's meters with
/// their current values (an upload held in the cache shows as a waiting block, the decisions taken
/// are counted), ASP.NET Core's and the runtime's beside them, and no path a caller sent; members
/// are refused by the policy like any other action they do not hold.
/// </summary>
public sealed partial class MetricsEndpointTests
{
    [Fact]
    public async Task AnAdministrator_ScrapesTheProxysMeters_WithTheirValues_AndAMemberIsRefused()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: UploadCacheTests.Held);
        var file = new DicomFileBuilder().Patient("METRICS1", "Metrics^Patient").PixelData(300_000).Build();
        var handle = (await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file))).Handle;
        await proxy.Client(ProxyRole.Producer).FetchAsync(handle, Stream.Null);

        var text = await ScrapeAsync(proxy);

        Assert.True(Value(text, "trustedproxy_upload_cache_waiting_blocks") >= 2, "the held upload's blocks are waiting");
        Assert.Equal(0, Value(text, "trustedproxy_upload_cache_alarm"));
        Assert.True(Value(text, "trustedproxy_policy_decisions_total") >= 2, "the upload's and the scrape's decisions are counted");
        Assert.Contains("http_server_request_duration_seconds", text);
        Assert.Contains("dotnet_gc_collections_total", text);

        // Routes by template, never the handle or UID a caller sent.
        Assert.DoesNotContain(handle, text);
        Assert.Contains("http_route=\"/api/v1/records/{handle}/content\"", text);

        foreach (var member in new[] { ProxyRole.Producer, ProxyRole.Consumer })
        {
            using var refused = await proxy.Client(member).SendAsync(new HttpRequestMessage(HttpMethod.Get, "metrics"));
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        }
    }

    private static async Task<string> ScrapeAsync(ProxyHost proxy)
    {
        using var response = await proxy.Client(ProxyRole.Admin).SendAsync(new HttpRequestMessage(HttpMethod.Get, "metrics"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString());
        return await response.Content.ReadAsStringAsync();
    }

    // The sum over every series of a metric (label sets aside), as an alert rule's sum() would read it.
    private static double Value(string text, string metric)
    {
        var values = Sample().Matches(text).Where(m => m.Groups["name"].Value == metric).Select(m => double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.True(values.Count > 0, $"no sample of {metric}");
        return values.Sum();
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (?<value>[-+0-9.eE]+|NaN)( [0-9]+)?$", RegexOptions.Multiline)]
    private static partial Regex Sample();
}
