using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Audit;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using static TrustedProxy.FunctionalTests.Dashboard.DashboardTests;

namespace TrustedProxy.FunctionalTests.Dashboard;

/// <summary>
/// The what-if form and the audit-log page over real mutual TLS: the form needs its token, decides
/// as the API does and encodes what it echoes; the page tells an intact log from a modified one and names the entry.
/// </summary>
public sealed partial class DashboardWhatIfAndAuditTests : ProxyTest
{
    [Fact]
    public async Task TheWhatIfForm_IsRefusedWithoutItsToken_AndWithItDecidesAsTheApi_EchoingValuesEncoded()
    {
        var officer = Proxy.Client(ProxyRole.Compliance);
        using var form = await GetAsync(officer, "dashboard/what-if", BrowserAccept);
        var token = TokenField().Match(await form.Content.ReadAsStringAsync()).Groups[1].Value;
        Assert.NotEmpty(token);
        var breakGlass = new Dictionary<string, string>
        {
            ["organisation"] = "Haukeland", ["role"] = "consumer", ["action"] = "retrieve", ["purpose"] = "emergency",
            ["justification"] = "trauma bay 2", ["origin"] = "Oslo Fertility Clinic", ["modality"] = "US",
        };

        using (var withoutToken = await PostAsync(officer, null, breakGlass))
        {
            Assert.Equal(HttpStatusCode.BadRequest, withoutToken.StatusCode);
            Assert.Contains("urn:trustedproxy:problem:antiforgery-failed", await withoutToken.Content.ReadAsStringAsync());
        }

        using (var response = await PostAsync(officer, token, breakGlass))
        {
            var html = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, html);
            var api = await officer.WhatIfAsync(new WhatIfRequest("Haukeland", "consumer", "retrieve", "emergency", BreakGlassJustification: "trauma bay 2",
                Record: new WhatIfRecord(OriginOrganisation: "Oslo Fertility Clinic", Modality: "US")));
            Assert.True(api is { Permitted: true, BreakGlass: true });
            Assert.Contains("<h2 class=\"permit\">Permit</h2>", html);
            Assert.Contains($"<dt>Deciding rule</dt><dd>{api.Rule}</dd><dt>Reason</dt><dd>{Html(api.Reason)}</dd><dt>Level</dt><dd>{api.Level}</dd>", html);
            Assert.Contains("<dt>Fingerprint</dt><dd>yes</dd>", html);
            foreach (var matched in api.Matched)
            {
                Assert.Contains($"<td>{matched.Rule}</td><td>{matched.Kind}</td><td>{matched.Effect}</td><td class=\"mono\">{Html(matched.Source)}</td><td>{matched.Status}</td>", html);
            }

            Assert.Contains(api.Matched, m => m is { Rule: "sensitive-origin-stays-home", Status: "overridden" });
            Assert.Contains("<option value=\"emergency\" selected=\"selected\">emergency</option>", html);
        }

        const string Hostile = "\"><script>alert(1)</script>";
        using (var echoed = await PostAsync(officer, token, new() { ["organisation"] = Hostile, ["role"] = "consumer", ["action"] = "delete" }))
        {
            var html = await echoed.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, echoed.StatusCode);
            Assert.DoesNotContain("<script", html);
            Assert.Contains($"name=\"organisation\" value=\"{Html(Hostile)}\"", html);
            Assert.Contains("<h2 class=\"deny\">Deny</h2>", html);
            Assert.Contains("<dt>Deciding rule</dt><dd>default-deny</dd>", html);
        }

        using var bad = await PostAsync(officer, token, new() { ["organisation"] = "Haukeland", ["role"] = "nurse", ["action"] = "retrieve", ["at"] = "yesterday" });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("at must be a UTC time", await bad.Content.ReadAsStringAsync());
        Assert.Empty(await Proxy.CloudObjectsAsync());
    }

    [Fact]
    public async Task TheAuditPage_SaysIntact_AndAfterAByteOfTheLogIsModified_SaysNotIntactNamingTheEntry()
    {
        var officer = Proxy.Client(ProxyRole.Compliance);
        await Proxy.Client(ProxyRole.Producer).UploadFileAsync(Path.Combine(DicomCorpus.TestFiles, "CT_small.dcm"));

        var intact = await DashboardPolicyPagesTests.ReadAsync(officer, "dashboard/audit");
        Assert.Contains("<h2>Intact</h2>", intact);
        Assert.Contains("href=\"/api/v1/audit/checkpoint\"", intact);
        Assert.Contains("href=\"/api/v1/audit/public-key\"", intact);
        Assert.DoesNotContain("First problem found", intact);

        // One byte of an entry in the middle of the log, changed in place.
        var path = Path.Combine(Proxy.Root, "data", "audit", "audit.log");
        var bytes = await File.ReadAllBytesAsync(path);
        var third = Encoding.UTF8.GetBytes(File.ReadAllLines(path)[0] + "\n").Length;
        third += Encoding.UTF8.GetBytes(File.ReadAllLines(path)[1] + "\n").Length;
        var at = Encoding.UTF8.GetString(bytes).IndexOf("Local Hospital", third, StringComparison.Ordinal);
        Assert.Equal((byte)'L', bytes[at]);
        bytes[at] = (byte)'M';
        await File.WriteAllBytesAsync(path, bytes);
        var expected = Proxy.Services.GetRequiredService<AuditLog>().Verify();
        Assert.False(expected.Intact);
        Assert.Equal((3, 2L, AuditProblemKinds.Modified), (expected.Problem!.Line, expected.Problem.Entry, expected.Problem.Kind));

        var broken = await DashboardPolicyPagesTests.ReadAsync(officer, "dashboard/audit");
        Assert.Contains("<h2>NOT intact</h2>", broken);
        Assert.Contains($"<dt>Kind</dt><dd>{expected.Problem.Kind}</dd><dt>Line</dt><dd>3</dd><dt>Entry</dt><dd>2</dd>", broken);
        Assert.Contains(Html(expected.Problem.Message), broken);
    }

    private static async Task<HttpResponseMessage> PostAsync(TrustedProxyClient client, string? token, Dictionary<string, string> fields)
    {
        if (token is not null)
        {
            fields["__RequestVerificationToken"] = token;
        }

        var request = new HttpRequestMessage(HttpMethod.Post, "dashboard/what-if") { Content = new FormUrlEncodedContent(fields) };
        request.Headers.Accept.ParseAdd(BrowserAccept);
        return await client.SendAsync(request);
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex TokenField();
}
