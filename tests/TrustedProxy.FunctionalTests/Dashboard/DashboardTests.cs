using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Server.Dashboard;
using TrustedProxy.Server.Hosting;
using TrustedProxy.Server.Policy;

namespace TrustedProxy.FunctionalTests.Dashboard;

/// <summary>
/// The compliance dashboard over real mutual TLS, as a browser's requests reach it: who is let in,
/// what the pages find and count, that echoed values are encoded, that the form needs its token.
/// </summary>
public sealed partial class DashboardTests : ProxyTest
{
    public const string BrowserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    private static readonly string CtSmall = Path.Combine(DicomCorpus.TestFiles, "CT_small.dcm");

    [Fact]
    public void EveryDashboardEndpoint_DeclaresTheAuditAction_AndStaysOutOfTheApiDescription()
    {
        var endpoints = Proxy.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/dashboard", StringComparison.Ordinal) == true)
            .ToList();

        Assert.True(endpoints.Count >= 8, string.Join(", ", endpoints.Select(e => e.RoutePattern.RawText)));
        Assert.All(endpoints, e =>
        {
            Assert.Equal(ProxyAction.Audit, e.Metadata.GetMetadata<ProxyActionMetadata>()?.Action);
            Assert.NotNull(e.Metadata.GetMetadata<IExcludeFromDescriptionMetadata>());
        });
    }

    [Fact]
    public async Task AConsumersBrowser_IsRefusedWithAPage_AndAnApiClientWithProblemJson_BothRecordedAsDenials()
    {
        var consumer = Proxy.Client(ProxyRole.Consumer);

        using var page = await GetAsync(consumer, "dashboard/reports", BrowserAccept);
        Assert.Equal(HttpStatusCode.Forbidden, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith("default-src 'none'", page.Headers.GetValues("Content-Security-Policy").Single());
        var html = await page.Content.ReadAsStringAsync();
        var log = Proxy.Services.GetRequiredService<DecisionLog>();
        var decision = Assert.Single((await log.SearchAsync(new DecisionFilter { Role = "consumer", Action = nameof(ProxyAction.Audit) }, 10)).Decisions);
        Assert.False(decision.Permitted);
        Assert.Equal("default-deny", decision.Rule);
        Assert.Contains("<h1>Denied by policy</h1>", html);
        Assert.Contains(Html(decision.Reason), html);
        Assert.Contains($"<dt>rule</dt><dd>{decision.Rule}</dd>", html);

        using var json = await GetAsync(consumer, "dashboard/reports", "application/json");
        Assert.Equal(HttpStatusCode.Forbidden, json.StatusCode);
        Assert.Equal("application/problem+json", json.Content.Headers.ContentType?.MediaType);
        Assert.Contains("urn:trustedproxy:problem:forbidden", await json.Content.ReadAsStringAsync());

        Assert.Equal(2, await log.CountAsync(new DecisionFilter { Role = "consumer", Action = nameof(ProxyAction.Audit), Permitted = false }));
    }

    [Fact]
    public async Task AnOfficer_GetsEveryPage_WithTheSecurityHeaders_AndTheNavigation()
    {
        var compliance = Proxy.Client(ProxyRole.Compliance);

        foreach (var path in new[] { "dashboard", "dashboard/policies", "dashboard/what-if", "dashboard/decisions", "dashboard/audit", "dashboard/trace", "dashboard/reports" })
        {
            using var response = await GetAsync(compliance, path, BrowserAccept);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(DashboardEndpoints.ContentSecurityPolicy, response.Headers.GetValues("Content-Security-Policy").Single());
            Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
            Assert.Contains("no-store", response.Headers.CacheControl?.ToString());
            var html = await response.Content.ReadAsStringAsync();
            Assert.StartsWith("<!DOCTYPE html>", html);
            Assert.Contains("Signed in by certificate as Local Hospital (compliance)", html);
            Assert.Contains("aria-current=\"page\"", html);
        }

        using var css = await GetAsync(compliance, "dashboard/dashboard.css", "text/css");
        Assert.Equal("text/css", css.Content.Headers.ContentType?.MediaType);
        Assert.Contains("--accent", await css.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task TheDecisionLog_FindsOneOrganisationsDenials_AndEncodesEveryValueItEchoes()
    {
        var stOlav = Consumer("St Olav", out _);
        await Assert.ThrowsAsync<TrustedProxyException>(() => stOlav.UploadFileAsync(CtSmall));
        await stOlav.WhoAmIAsync();
        var compliance = Proxy.Client(ProxyRole.Compliance);

        var found = await ReadPageAsync(compliance, "dashboard/decisions?organisation=St+Olav&result=deny&role=&action=");
        Assert.Contains("1 decision matches.", found);
        var row = Assert.Single(Rows(found));
        Assert.Contains("<td>St Olav</td><td>consumer</td>", row);
        Assert.Contains("<td>Upload</td><td class=\"mono\">POST /api/v1/records/</td><td class=\"deny\">deny</td><td>default-deny</td>", row);

        var echoed = await ReadPageAsync(compliance, "dashboard/decisions?rule=" + Uri.EscapeDataString("\"><script>alert(1)</script>") + "&request=" + Uri.EscapeDataString("'onfocus='x"));
        Assert.Contains("0 decisions match.", echoed);
        Assert.DoesNotContain("<script", echoed);
        Assert.Contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\"", echoed);
        Assert.Contains("value=\"&#x27;onfocus=&#x27;x\"", echoed);
    }

    [Fact]
    public async Task BadFilters_AreAnsweredWithOneProblemNamingEach_AndAnOverlongReportPeriodIsRefused()
    {
        var compliance = Proxy.Client(ProxyRole.Compliance);

        using var decisions = await GetAsync(compliance, "dashboard/decisions?role=nurse&from=2025-13-01&before=-1&result=deny&result=permit", "application/json");
        Assert.Equal(HttpStatusCode.BadRequest, decisions.StatusCode);
        var problem = await decisions.Content.ReadAsStringAsync();
        Assert.Contains("urn:trustedproxy:problem:invalid-query", problem);
        Assert.Contains("role must be one of producer, consumer, compliance, admin", problem);
        Assert.Contains("from must be a date as yyyy-MM-dd", problem);
        Assert.Contains("before must be a positive whole number", problem);
        Assert.Contains("give result once", problem);

        using var reversed = await GetAsync(compliance, "dashboard/reports?from=2025-03-02&to=2025-03-01", BrowserAccept);
        Assert.Equal(HttpStatusCode.BadRequest, reversed.StatusCode);
        Assert.Contains("from must not be after to", await reversed.Content.ReadAsStringAsync());

        using var tooLong = await GetAsync(compliance, "dashboard/reports/summary.csv?from=1900-01-01&to=2025-01-01", "text/csv");
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        Assert.Contains("at most 3660 days", await tooLong.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task TheTraceForm_IsRefusedWithoutItsToken_OrWithAnotherOfficersToken_AndWithItsOwnNamesTheConsumer()
    {
        var upload = await Proxy.Client(ProxyRole.Producer).UploadFileAsync(CtSmall);
        using var fetched = await Consumer("St Olav", out var serial).SendAsync(new HttpRequestMessage(HttpMethod.Get, $"api/v1/records/{upload.Handle}/content"));
        var copy = await fetched.Content.ReadAsByteArrayAsync();
        var requestId = fetched.Headers.GetValues("Request-Id").Single();

        var officer = Proxy.Client(ProxyRole.Compliance);
        using var form = await GetAsync(officer, "dashboard/trace", BrowserAccept);
        var token = TokenField().Match(await form.Content.ReadAsStringAsync()).Groups[1].Value;
        var cookie = form.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("__Host-TrustedProxy-Antiforgery=", StringComparison.Ordinal));
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("secure", cookie, StringComparison.OrdinalIgnoreCase);

        using var withoutToken = await PostTraceAsync(officer, token: null, copy);
        Assert.Equal(HttpStatusCode.BadRequest, withoutToken.StatusCode);
        Assert.Contains("urn:trustedproxy:problem:antiforgery-failed", await withoutToken.Content.ReadAsStringAsync());

        using (var credential = Proxy.OpenCa().IssueClient("Audit Office", ProxyRole.Compliance, TimeSpan.FromDays(1)))
        {
            var other = Proxy.Client(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(credential.ExportPkcs12("x"), "x"));
            using var borrowed = await PostTraceAsync(other, token, copy, cookie.Split(';')[0]);
            Assert.Equal(HttpStatusCode.BadRequest, borrowed.StatusCode);
            Assert.Contains("urn:trustedproxy:problem:antiforgery-failed", await borrowed.Content.ReadAsStringAsync());
        }

        using var traced = await PostTraceAsync(officer, token, copy);
        Assert.Equal(HttpStatusCode.OK, traced.StatusCode);
        var result = await traced.Content.ReadAsStringAsync();
        Assert.Contains("<h2>Fingerprinted: handed out to St Olav</h2>", result);
        Assert.Contains($"<dt>Certificate serial</dt><dd>{serial}</dd>", result);
        Assert.Contains($"<dt>Request id</dt><dd>{requestId}</dd>", result);
        Assert.Contains($"href=\"/dashboard/decisions?request={requestId}\"", result);

        using var garbage = await PostTraceAsync(officer, token, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3]);
        Assert.Equal(HttpStatusCode.BadRequest, garbage.StatusCode);
        Assert.Contains("not a PNG this proxy reads", await garbage.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ACopyLargerThanTheTraceLimit_IsRefusedAsTooLarge_WhetherItsFormFitsTheBodyLimitOrNot()
    {
        await Proxy.StopAsync();
        await Proxy.StartAgainAsync(new Dictionary<string, string?> { ["TrustedProxy:Watermarking:MaxInMemoryBytes"] = "4096" });
        var officer = Proxy.Client(ProxyRole.Compliance);
        using var form = await GetAsync(officer, "dashboard/trace", BrowserAccept);
        var token = TokenField().Match(await form.Content.ReadAsStringAsync()).Groups[1].Value;

        foreach (var size in new[] { 5_000, 200_000 })
        {
            using var response = await PostTraceAsync(officer, token, new byte[size]);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
            Assert.Contains("<h1>Request body too large</h1>", await response.Content.ReadAsStringAsync());
        }

        using var fits = await PostTraceAsync(officer, token, new byte[4_000]);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, fits.StatusCode);
        Assert.Contains("not-dicom-part10", await fits.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task TheReports_CountPerInstitutionAndPurpose_TheUploadsRetrievalsDenialsAndBreakGlassUsesDoneThroughTheApi_InTheTableAndTheCsv()
    {
        // Local Hospital uploads 2 (treatment); St Olav retrieves 1 and is denied a deletion
        // (treatment) and retrieves 1 for research; Haukeland retrieves 1 and takes one oblivious
        // transfer (treatment) and breaks the glass once in an emergency.
        var producer = Proxy.Client(ProxyRole.Producer);
        var first = await producer.UploadFileAsync(CtSmall);
        var second = await producer.UploadFileAsync(Path.Combine(DicomCorpus.TestFiles, "MR_small.dcm"));
        var stOlav = Consumer("St Olav", out _);
        await stOlav.FetchAsync(first.Handle, Stream.Null);
        await Assert.ThrowsAsync<TrustedProxyException>(() => stOlav.DeleteAsync(first.Handle));
        stOlav.PurposeOfUse = "research";
        await stOlav.FetchAsync(second.Handle, Stream.Null, deidentified: true);
        var haukeland = Consumer("Haukeland", out _);
        await haukeland.FetchAsync(first.Handle, Stream.Null);
        await haukeland.FetchObliviousAsync([first.Handle, second.Handle], [second.Handle]);
        haukeland.PurposeOfUse = "emergency";
        haukeland.BreakGlassJustification = "trauma bay 2, unconscious patient";
        await haukeland.FetchAsync(first.Handle, Stream.Null);
        var compliance = Proxy.Client(ProxyRole.Compliance);
        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        var period = $"from={today.AddDays(-1):yyyy-MM-dd}&to={today.AddDays(1):yyyy-MM-dd}";

        var table = await ReadPageAsync(compliance, $"dashboard/reports?{period}");
        Assert.Contains("<tr><td>Haukeland</td><td>emergency</td><td class=\"number\">0</td><td class=\"number\">1</td><td class=\"number\">0</td><td class=\"number\">1</td></tr>", table);
        Assert.Contains("<tr><td>Haukeland</td><td>treatment</td><td class=\"number\">0</td><td class=\"number\">2</td><td class=\"number\">0</td><td class=\"number\">0</td></tr>", table);
        Assert.Contains("<tr><th>Total</th><th>all</th><th class=\"number\">2</th><th class=\"number\">5</th><th class=\"number\">1</th><th class=\"number\">1</th></tr>", table);

        using var csv = await GetAsync(compliance, $"dashboard/reports/summary.csv?{period}", "text/csv");
        Assert.Equal(HttpStatusCode.OK, csv.StatusCode);
        Assert.Equal("text/csv", csv.Content.Headers.ContentType?.MediaType);
        Assert.Equal($"trustedproxy-summary-all-{today.AddDays(-1):yyyy-MM-dd}-{today.AddDays(1):yyyy-MM-dd}.csv", csv.Content.Headers.ContentDisposition?.FileName?.Trim('"'));
        var days = $"{today.AddDays(-1):yyyy-MM-dd},{today.AddDays(1):yyyy-MM-dd}";
        Assert.Equal(
            [
                "institution,purpose,uploads,retrievals,denials,break_glass_uses,from,to",
                $"Haukeland,emergency,0,1,0,1,{days}",
                $"Haukeland,treatment,0,2,0,0,{days}",
                $"Local Hospital,treatment,2,0,0,0,{days}",
                $"St Olav,research,0,1,0,0,{days}",
                $"St Olav,treatment,0,1,1,0,{days}",
                string.Empty,
            ],
            (await csv.Content.ReadAsStringAsync()).Split("\r\n"));

        using var one = await GetAsync(compliance, $"dashboard/reports/summary.csv?organisation=St+Olav&{period}", "text/csv");
        Assert.Equal(4, (await one.Content.ReadAsStringAsync()).Split("\r\n").Length);
    }

    [Fact]
    public async Task AnUnusablePdfFont_StopsTheStart_NamingTheSetting()
    {
        using var directory = new TemporaryDirectory();
        File.WriteAllText(directory.File("not-a-font.ttf"), "hello");

        foreach (var font in new[] { "missing.ttf", "not-a-font.ttf" })
        {
            var error = await Assert.ThrowsAsync<InvalidConfigurationException>(() => ProxyServer.BuildAsync(new ProxyServerSettings
            {
                ContentRoot = directory.Path,
                Overrides = new Dictionary<string, string?> { ["TrustedProxy:Dashboard:PdfFontFile"] = font, ["TrustedProxy:Storage:Backend"] = "filesystem" },
            }));

            Assert.Contains(error.Errors, e => e.StartsWith("TrustedProxy:Dashboard:PdfFontFile:", StringComparison.Ordinal) && e.Contains(font, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task TheDashboardTurnedOff_AnswersNotFound()
    {
        await Proxy.StopAsync();
        await Proxy.StartAgainAsync(new Dictionary<string, string?> { ["TrustedProxy:Dashboard:Enabled"] = "false" });

        using var response = await GetAsync(Proxy.Client(ProxyRole.Compliance), "dashboard", "application/json");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    internal static async Task<HttpResponseMessage> GetAsync(TrustedProxyClient client, string path, string accept)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd(accept);
        return await client.SendAsync(request);
    }

    private static async Task<string> ReadPageAsync(TrustedProxyClient client, string path)
    {
        using var response = await GetAsync(client, path, BrowserAccept);
        var html = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, html);
        return html;
    }

    /// <summary>A value as the dashboard's pages encode it.</summary>
    internal static string Html(string text) => System.Text.Encodings.Web.HtmlEncoder.Create(System.Text.Unicode.UnicodeRanges.All).Encode(text);

    private static IEnumerable<string> Rows(string html) =>
        TableBodyRow().Matches(html[html.IndexOf("<tbody>", StringComparison.Ordinal)..]).Select(m => m.Value);

    private static async Task<HttpResponseMessage> PostTraceAsync(TrustedProxyClient client, string? token, byte[] copy, string? cookie = null)
    {
        var content = new MultipartFormDataContent();
        if (token is not null)
        {
            content.Add(new StringContent(token), "__RequestVerificationToken");
        }

        var file = new ByteArrayContent(copy);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Add(file, LeakTracePage.FileField, "leaked.dcm");
        var request = new HttpRequestMessage(HttpMethod.Post, "dashboard/trace") { Content = content };
        request.Headers.Accept.ParseAdd(BrowserAccept);
        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }

        return await client.SendAsync(request);
    }

    private TrustedProxyClient Consumer(string organisation, out string serial)
    {
        using var credential = Proxy.OpenCa().IssueClient(organisation, ProxyRole.Consumer, TimeSpan.FromDays(1));
        serial = credential.Serial;
        return Proxy.Client(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(credential.ExportPkcs12("x"), "x"));
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex TokenField();

    [GeneratedRegex("<tr>.*?</tr>")]
    private static partial Regex TableBodyRow();
}
