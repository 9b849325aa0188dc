using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using static Microsoft.Playwright.Assertions;

namespace TrustedProxy.FunctionalTests.Dashboard;

/// <summary>
/// The dashboard end to end in headless Chromium with client certificates: a compliance officer
/// reads the policies, runs a what-if, verifies the audit log, searches the decision log, traces a
/// copy a consumer fetched, and downloads a PDF report whose counts are those of what this test did
/// through the API; a consumer's certificate is refused.
/// </summary>
public sealed class DashboardBrowserTests : ProxyTest
{
    private static readonly string CtSmall = Path.Combine(DicomCorpus.TestFiles, "CT_small.dcm");

    [Fact]
    public async Task AnOfficer_ReadsThePolicies_RunsAWhatIf_VerifiesTheLog_SearchesIt_TracesACopy_AndDownloadsAReportWithTheCounts_WhileAConsumerIsRefused()
    {
        // What the report will count, done through the real API: Local Hospital uploads 2; St Olav
        // retrieves 1 and is denied an upload (treatment), and retrieves 1 for research; Haukeland
        // retrieves 2 (treatment) and breaks the glass once (emergency). A consumer's refused
        // dashboard page follows below (Local Hospital, treatment).
        var producer = Proxy.Client(ProxyRole.Producer);
        var first = await producer.UploadFileAsync(CtSmall);
        var second = await producer.UploadFileAsync(Path.Combine(DicomCorpus.TestFiles, "MR_small.dcm"));
        var stOlav = Consumer("St Olav");
        using var fetched = await stOlav.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"api/v1/records/{first.Handle}/content"));
        var requestId = fetched.Headers.GetValues("Request-Id").Single();
        using var work = new TemporaryDirectory();
        var leaked = work.File("leaked.dcm");
        await File.WriteAllBytesAsync(leaked, await fetched.Content.ReadAsByteArrayAsync());
        await Assert.ThrowsAsync<TrustedProxyException>(() => stOlav.UploadFileAsync(CtSmall));
        var haukeland = Consumer("Haukeland");
        await haukeland.FetchAsync(first.Handle, Stream.Null);
        await haukeland.FetchAsync(second.Handle, Stream.Null);
        stOlav.PurposeOfUse = "research";
        await stOlav.FetchAsync(second.Handle, Stream.Null, deidentified: true);
        haukeland.PurposeOfUse = "emergency";
        haukeland.BreakGlassJustification = "trauma bay 2, unconscious patient";
        await haukeland.FetchAsync(first.Handle, Stream.Null);

        await using var chromium = await HeadlessChromium.LaunchAsync(Proxy.Certificates.CaCertificate);
        var origin = Proxy.BaseAddress;

        // A consumer's certificate: refused, with the problem as a page.
        await using (var consumerContext = await chromium.ContextAsync(origin, Proxy.CredentialPath(ProxyRole.Consumer)))
        {
            var consumerPage = await consumerContext.NewPageAsync();
            var refused = await consumerPage.GotoAsync(new Uri(origin, "dashboard").ToString());
            Assert.Equal(403, refused!.Status);
            await Expect(consumerPage.GetByRole(AriaRole.Heading, new() { Name = "Denied by policy" })).ToBeVisibleAsync();
            var decision = Assert.Single((await Proxy.Services.GetRequiredService<DecisionLog>().SearchAsync(new DecisionFilter { Role = "consumer", Action = nameof(ProxyAction.Audit) }, 10)).Decisions);
            Assert.False(decision.Permitted);
            await Expect(consumerPage.GetByText(decision.Reason)).ToBeVisibleAsync();
        }

        await using var context = await chromium.ContextAsync(origin, Proxy.CredentialPath(ProxyRole.Compliance));
        var page = await context.NewPageAsync();
        var overview = await page.GotoAsync(new Uri(origin, "dashboard").ToString());
        Assert.Equal(200, overview!.Status);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Overview" })).ToBeVisibleAsync();
        await Expect(page.GetByText("Signed in by certificate as Local Hospital (compliance)")).ToBeVisibleAsync();

        // The policies in force, file by file, and the history's first version.
        await Navigation(page, "Policies").ClickAsync();
        var store = Proxy.Services.GetRequiredService<PolicyStore>();
        await Expect(page.GetByText(store.CurrentVersion.Hash).First).ToBeVisibleAsync();
        foreach (var file in store.Current.Files)
        {
            await Expect(page.GetByRole(AriaRole.Heading, new() { Name = file.Name, Exact = true })).ToBeVisibleAsync();
        }

        await Expect(page.Locator("section.policy-file", new() { HasText = "10-roles.yaml" }).Locator("td.code", new() { HasText = "id: compliance-audits" })).ToHaveCountAsync(1);
        await page.GetByRole(AriaRole.Link, new() { Name = $"Diff of version {store.CurrentVersion.Id}", Exact = true }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = $"Policy version {store.CurrentVersion.Id}" })).ToBeVisibleAsync();

        // A what-if: an emergency read of a record the fertility clinic keeps at home breaks the glass.
        await Navigation(page, "What if").ClickAsync();
        await page.GetByLabel("Organisation").FillAsync("Haukeland");
        await page.GetByLabel("Role").SelectOptionAsync("consumer");
        await page.GetByLabel("Action").SelectOptionAsync("retrieve");
        await page.GetByLabel("Purpose").SelectOptionAsync("emergency");
        await page.GetByLabel("Break-glass justification").FillAsync("trauma bay 2");
        await page.GetByLabel("Record origin").FillAsync("Oslo Fertility Clinic");
        await page.GetByRole(AriaRole.Button, new() { Name = "Evaluate", Exact = true }).ClickAsync();
        var decided = page.Locator("section.what-if-result");
        await Expect(decided.GetByRole(AriaRole.Heading, new() { Name = "Permit", Exact = true })).ToBeVisibleAsync();
        await Expect(decided).ToContainTextAsync("break-glass-emergency");
        await Expect(decided.Locator("table.matched tr", new() { HasText = "sensitive-origin-stays-home" })).ToContainTextAsync("overridden");

        // The audit log, verified now.
        await Navigation(page, "Audit log").ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Intact", Exact = true })).ToBeVisibleAsync();
        await Expect(page.Locator("section.audit-status")).ToContainTextAsync("Entries not yet under a checkpoint");

        // The decision log: St Olav's denials.
        await Navigation(page, "Decision log").ClickAsync();
        await page.GetByLabel("Organisation").FillAsync("St Olav");
        await page.GetByLabel("Result").SelectOptionAsync("deny");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search", Exact = true }).ClickAsync();
        await Expect(page.GetByText("1 decision matches.")).ToBeVisibleAsync();
        var denial = page.Locator("table.decisions tbody tr");
        await Expect(denial).ToHaveCountAsync(1);
        await Expect(denial).ToContainTextAsync("St Olav");
        await Expect(denial).ToContainTextAsync("Upload");
        await Expect(denial).ToContainTextAsync("default-deny");

        // Leak tracing: the copy St Olav fetched names St Olav and the request; its decision is one click away.
        await Navigation(page, "Leak tracing").ClickAsync();
        await page.GetByLabel("Copy to trace").SetInputFilesAsync(leaked);
        await page.GetByRole(AriaRole.Button, new() { Name = "Trace", Exact = true }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Fingerprinted: handed out to St Olav" })).ToBeVisibleAsync();
        await Expect(page.Locator("section.trace-result")).ToContainTextAsync(requestId);
        await page.GetByRole(AriaRole.Link, new() { Name = "The decision in the log", Exact = true }).ClickAsync();
        var traced = page.Locator("table.decisions tbody tr");
        await Expect(traced).ToHaveCountAsync(1);
        await Expect(traced).ToContainTextAsync("GET /api/v1/records/{handle}/content");

        // The report over a period around today, as a table and as a PDF.
        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        await Navigation(page, "Reports").ClickAsync();
        await page.GetByLabel("From (day)").FillAsync(today.AddDays(-1).ToString("yyyy-MM-dd"));
        await page.GetByLabel("To (day)").FillAsync(today.AddDays(1).ToString("yyyy-MM-dd"));
        await page.GetByRole(AriaRole.Button, new() { Name = "Show", Exact = true }).ClickAsync();
        await Expect(page.Locator("table.report tbody tr")).ToHaveCountAsync(5);
        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Link, new() { Name = "Download PDF", Exact = true }).ClickAsync());
        var pdf = await File.ReadAllBytesAsync(await download.PathAsync());

        var lines = PdfText.AllLines(pdf);
        Assert.Contains("Institution: All institutions", lines);
        Assert.Contains("Institution Purpose Uploads Retrievals Denials Break-glass uses", lines);
        Assert.Contains("Haukeland emergency 0 1 0 1", lines);
        Assert.Contains("Haukeland treatment 0 2 0 0", lines);
        Assert.Contains("Local Hospital treatment 2 0 1 0", lines);
        Assert.Contains("St Olav research 0 1 0 0", lines);
        Assert.Contains("St Olav treatment 0 1 1 0", lines);
        Assert.Contains("Total all 2 5 2 1", lines);
    }

    private static ILocator Navigation(IPage page, string section) =>
        page.GetByRole(AriaRole.Navigation, new() { Name = "Dashboard" }).GetByRole(AriaRole.Link, new() { Name = section, Exact = true });

    private TrustedProxyClient Consumer(string organisation)
    {
        using var credential = Proxy.OpenCa().IssueClient(organisation, ProxyRole.Consumer, TimeSpan.FromDays(1));
        return Proxy.Client(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(credential.ExportPkcs12("x"), "x"));
    }
}
