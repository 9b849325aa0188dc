using System.Net;
using System.Text.Json.Nodes;
using TrustedProxy.Audit;
using TrustedProxy.Policy;

namespace TrustedProxy.FunctionalTests.Audit;

/// <summary>
/// The audit log unusable when the proxy starts, with failures that hold as root: a log that
/// cannot be opened stops the start with one line; a log that opens but cannot be written lets it
/// start and fail every request closed. Each is checked against what docs/audit-log.md says.
/// </summary>
public sealed class AuditStartUpTests
{
    [Fact]
    public async Task ALogThatCannotBeOpened_StopsTheStart_WithOneLineNamingIt_AsDocumented()
    {
        await using var proxy = await ProxyHost.StartAsync();
        await proxy.StopAsync();
        var audit = Path.Combine(proxy.Root, "data", "audit");
        var log = Path.Combine(audit, "audit.log");
        File.Move(log, log + ".aside");
        Directory.CreateDirectory(log);

        var refused = await Assert.ThrowsAsync<AuditUnavailableException>(() => proxy.StartAgainAsync());

        Assert.Equal($"the audit log in '{audit}' cannot be opened: its path '{log}' is a directory, not the log file", refused.Message);
        Assert.DoesNotContain('\n', refused.Message);
        var documented = StartUpSection();
        Assert.Contains("cannot be opened", documented, StringComparison.Ordinal);
        Assert.Contains("its path is a directory", documented, StringComparison.Ordinal);
        Assert.Contains("stops the start", documented, StringComparison.Ordinal);

        // Put right, the same directory starts again with its log intact.
        Directory.Delete(log);
        File.Move(log + ".aside", log);
        await proxy.StartAgainAsync();
        Assert.Equal("Healthy", JsonNode.Parse(await (await proxy.Client(ProxyRole.Producer).SendAsync(new HttpRequestMessage(HttpMethod.Get, "healthz/live"))).Content.ReadAsStringAsync())!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task ALogThatOpensButCannotBeWritten_Starts_AndFailsEveryRequestClosed_AsDocumented()
    {
        await using var proxy = await ProxyHost.StartAsync();
        await proxy.StopAsync();
        var log = Path.Combine(proxy.Root, "data", "audit", "audit.log");
        File.Delete(Path.Combine(proxy.Root, "data", "audit", "checkpoint.json"));
        File.Delete(log);
        File.CreateSymbolicLink(log, "/dev/full"); // reads as empty, every write ENOSPC

        await proxy.StartAgainAsync();

        using var health = await proxy.Client(ProxyRole.Producer).SendAsync(new HttpRequestMessage(HttpMethod.Get, "healthz"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        Assert.Equal("urn:trustedproxy:problem:audit-unavailable", JsonNode.Parse(await health.Content.ReadAsStringAsync())!["type"]!.GetValue<string>());
        var documented = StartUpSection();
        Assert.Contains("opens but cannot be written", documented, StringComparison.Ordinal);
        Assert.Contains("does not stop the start", documented, StringComparison.Ordinal);
    }

    private static string StartUpSection()
    {
        var text = File.ReadAllText(Repository.Path("docs", "audit-log.md"));
        var start = text.IndexOf("**At start-up.**", StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/audit-log.md has no paragraph on an audit log unusable at start-up");
        var end = text.IndexOf("\n\n", start, StringComparison.Ordinal);
        return System.Text.RegularExpressions.Regex.Replace(text[start..end], @"\s+", " ");
    }
}
