using System.Net;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Audit;
using TrustedProxy.Client;
using TrustedProxy.FunctionalTests.Policy;
using TrustedProxy.Policy;
using static TrustedProxy.FunctionalTests.Dashboard.DashboardTests;

namespace TrustedProxy.FunctionalTests.Dashboard;

/// <summary>
/// The policies page over real mutual TLS, on a proxy whose policy directory the test edits: the
/// files in force, encoded; a refused edit at its file:line:column; a version's diff against the one before.
/// </summary>
public sealed class DashboardPolicyPagesTests : OwnPolicyTest
{
    [Fact]
    public async Task ThePoliciesPage_ShowsTheFilesEncoded_TheRefusedEditAtItsLine_AndTheDiffShowsAnEditedLine()
    {
        var officer = Proxy.Client(ProxyRole.Compliance);
        const string Hostile = "</td><script>alert('x')</script>";
        await AddPolicyAsync("60-hostile.yaml", $"rules:\n  - id: hostile-description\n    description: \"{Hostile}\"\n    effect: deny\n    organisations: [Nobody]\n");

        var page = await ReadAsync(officer, "dashboard/policies");
        Assert.DoesNotContain("<script", page);
        Assert.Contains(Html($"    description: \"{Hostile}\""), page);
        Assert.Contains(Store.CurrentVersion.Hash, page);
        Assert.Contains("<h3>10-roles.yaml</h3>", page);
        Assert.DoesNotContain("Last refused change", page);

        // An edited line: the compliance grant's description.
        var roles = Path.Combine(PolicyDirectory, "10-roles.yaml");
        var original = await File.ReadAllTextAsync(roles);
        const string OldLine = "    description: compliance officers read decisions, policies and traces";
        const string NewLine = "    description: compliance officers read decisions, policies, traces & the audit log";
        Assert.Contains(OldLine + "\n", original);
        var number = original.Split('\n').ToList().IndexOf(OldLine) + 1;
        var version = Store.CurrentVersion.Hash;
        await File.WriteAllTextAsync(roles, original.Replace(OldLine, NewLine, StringComparison.Ordinal));
        await Store.ReloadAsync();
        Assert.NotEqual(version, Store.CurrentVersion.Hash);

        var history = await ReadAsync(officer, "dashboard/policies");
        var newest = Store.CurrentVersion.Id;
        Assert.Contains($"href=\"/dashboard/policies/{newest}\"", history);
        Assert.Contains($"href=\"/dashboard/policies/{newest - 1}\"", history);

        var diff = await ReadAsync(officer, $"dashboard/policies/{newest}");
        Assert.Contains($"<tr class=\"removed\"><td class=\"line-number\">{number}</td><td class=\"line-number\"></td><td class=\"mark\">-</td><td class=\"code\">{Html(OldLine)}</td></tr>", diff);
        Assert.Contains($"<tr class=\"added\"><td class=\"line-number\"></td><td class=\"line-number\">{number}</td><td class=\"mark\">{Html("+")}</td><td class=\"code\">{Html(NewLine)}</td></tr>", diff);
        Assert.Equal(2, diff.Split("<tr class=\"").Length - 1);
        Assert.Contains("<section class=\"policy-file\" aria-label=\"60-hostile.yaml\"><h3>60-hostile.yaml</h3><p>Unchanged.</p></section>", diff);

        var added = await ReadAsync(officer, $"dashboard/policies/{newest - 1}");
        Assert.Contains("<h3>60-hostile.yaml</h3><p>Added in this version.</p>", added);
        Assert.Contains($"<td class=\"mark\">{Html("+")}</td><td class=\"code\">{Html($"    description: \"{Hostile}\"")}</td>", added);
        Assert.DoesNotContain("<script", added);

        // A refused edit: named at its file, line and column; the version in force stays.
        await File.WriteAllTextAsync(roles, original.Replace("actions: [search, retrieve, retrieve-oblivious]", "actions: [search, retreive, retrieve-oblivious]", StringComparison.Ordinal));
        await Store.ReloadAsync();
        var error = Assert.Single(Store.LastRejection!.Errors);
        var refused = await ReadAsync(officer, "dashboard/policies");
        Assert.Contains("the version above stayed in force", refused);
        Assert.Contains(Html(error.ToString()), refused);
        Assert.StartsWith("10-roles.yaml:", error.ToString(), StringComparison.Ordinal);

        using var missing = await GetAsync(officer, "dashboard/policies/999", BrowserAccept);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    internal static async Task<string> ReadAsync(TrustedProxyClient client, string path)
    {
        using var response = await GetAsync(client, path, BrowserAccept);
        var html = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, html);
        return html;
    }
}
