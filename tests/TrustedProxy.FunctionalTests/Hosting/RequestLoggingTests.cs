using System.Net.Http.Headers;
using Microsoft.Extensions.Logging.Testing;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Hosting;

/// <summary>
/// What a request leaves in the server's logs, with every category at Debug as an operator
/// chasing a problem would set them: its route pattern, never its raw path (DICOM UIDs) and
/// never a line break of its own.
/// </summary>
public sealed class RequestLoggingTests
{
    private const string Uid = "1.2.826.0.1.3680043.9.7777.424242";
    private const string Injected = "INJECTED-LOG-LINE";

    [Fact]
    public async Task ARequestWithAUidAndACrLfInItsPath_LeavesNeitherInTheLogs()
    {
        using var logs = new FakeLoggerProvider();
        await using (var proxy = await ProxyHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Logging:LogLevel:Default"] = "Debug",
            ["Logging:LogLevel:Microsoft.AspNetCore"] = "Debug",
        }, logs: logs))
        {
            var path = $"dicomweb/studies/{Uid}%0D%0A{Injected}";
            using var metadata = await proxy.Client(ProxyRole.Consumer).SendAsync(new HttpRequestMessage(HttpMethod.Get, path + "/metadata"));
            Assert.Equal(404, (int)metadata.StatusCode);

            // A STOW-RS refused for its content type is logged with the reason; the path still is not.
            using var stow = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent([1, 2, 3]) };
            stow.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/octet-stream");
            using var refused = await proxy.Client(ProxyRole.Producer).SendAsync(stow);
            Assert.Equal(415, (int)refused.StatusCode);

            // A request that fails in an endpoint goes through the problem handler's log line.
            using var upload = new HttpRequestMessage(HttpMethod.Post, $"api/v1/records?note={Uid}%0D%0A{Injected}") { Content = new ByteArrayContent(new byte[300]) };
            upload.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/dicom");
            using var notDicom = await proxy.Client(ProxyRole.Producer).SendAsync(upload);
            Assert.Equal(415, (int)notDicom.StatusCode);
        }

        var records = logs.Collector.GetSnapshot();
        var texts = records.Select(Text).ToList();

        // The requests were logged, by route pattern: the check below looks at lines that exist.
        Assert.Contains(texts, t => t.Contains("GET /dicomweb/studies/{study}/metadata", StringComparison.Ordinal));
        Assert.Contains(texts, t => t.Contains("STOW-RS request refused", StringComparison.Ordinal));
        Assert.Contains(texts, t => t.Contains("POST /api/v1/records", StringComparison.Ordinal));
        Assert.All(texts, t =>
        {
            Assert.DoesNotContain(Uid, t);
            Assert.DoesNotContain(Injected, t);
        });
    }

    /// <summary>Everything a provider could write: the message, its structured values, its scopes and its exception.</summary>
    private static string Text(FakeLogRecord record) => string.Join(
        " | ",
        new[] { record.Category ?? string.Empty, record.Message, record.Exception?.ToString() ?? string.Empty }
            .Concat(record.StructuredState?.Select(p => $"{p.Key}={p.Value}") ?? [])
            .Concat(record.Scopes.Select(s => s is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join(",", pairs.Select(p => $"{p.Key}={p.Value}")) : s?.ToString() ?? string.Empty)));
}
