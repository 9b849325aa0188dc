using Microsoft.Playwright;

namespace TrustedProxy.FunctionalTests.Dashboard;

/// <summary>
/// Debian's chromium, headless, driven by Playwright (its own Node driver, never `playwright
/// install`). Playwright presents client certificates itself: its driver makes the TLS connection
/// to the proxy, verifying the proxy against the federation CA (NODE_EXTRA_CA_CERTS, read when the
/// driver starts), so the test trusts exactly what a member's browser would be told to trust.
/// </summary>
internal sealed class HeadlessChromium : IAsyncDisposable
{
    public const string Executable = "/usr/bin/chromium";

    private static readonly string[] Arguments =
        ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

    // The driver reads the variable from this process's environment when it starts; others must not interleave.
    private static readonly SemaphoreSlim DriverStart = new(1, 1);

    private readonly IPlaywright _playwright;

    private HeadlessChromium(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        Browser = browser;
    }

    public IBrowser Browser { get; }

    public static async Task<HeadlessChromium> LaunchAsync(string federationCaPemPath)
    {
        Assert.True(File.Exists(Executable), $"Debian's chromium is not installed ({Executable} is missing): run `apt-get install chromium`, or tools/test.sh as root, which installs it");
        IPlaywright playwright;
        await DriverStart.WaitAsync();
        var previous = Environment.GetEnvironmentVariable("NODE_EXTRA_CA_CERTS");
        try
        {
            Environment.SetEnvironmentVariable("NODE_EXTRA_CA_CERTS", federationCaPemPath);
            playwright = await Playwright.CreateAsync();
        }
        finally
        {
            Environment.SetEnvironmentVariable("NODE_EXTRA_CA_CERTS", previous);
            DriverStart.Release();
        }

        try
        {
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = Executable, Headless = true, Args = Arguments });
            return new HeadlessChromium(playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    /// <summary>A browser profile of its own that presents the credential (PKCS#12, empty password) to <paramref name="origin"/>.</summary>
    public Task<IBrowserContext> ContextAsync(Uri origin, string pkcs12Path) =>
        Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ClientCertificates = [new ClientCertificate { Origin = origin.GetLeftPart(UriPartial.Authority), PfxPath = pkcs12Path, Passphrase = string.Empty }],
            AcceptDownloads = true,
        });

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
    }
}
