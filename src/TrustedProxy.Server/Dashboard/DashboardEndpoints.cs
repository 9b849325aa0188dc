using System.Reflection;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using TrustedProxy.Policy;
using TrustedProxy.Server.Policy;

namespace TrustedProxy.Server.Dashboard;

/// <summary>
/// The compliance dashboard: server-rendered pages under /dashboard for compliance officers. Every
/// endpoint of the group declares the Audit action, so the enforcement point admits the compliance
/// role only and records each page view as a decision; a refused browser gets the problem as a page.
/// </summary>
internal static class DashboardEndpoints
{
    /// <summary>
    /// No script at all; style only from our stylesheet; forms post only to us; never framed
    /// (clickjacking a form), never cached (audit data), no referrer leaving with a query string.
    /// </summary>
    public const string ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    private static readonly byte[] Stylesheet = ReadStylesheet();

    public static IServiceCollection AddDashboard(this IServiceCollection services, DashboardOptions options, ReportFont font)
    {
        services.AddSingleton(Options.Create(options));
        services.AddSingleton(font);

        // Antiforgery tokens need to outlive a form, not a restart: keys in memory only, nothing written to disk.
        services.AddDataProtection().UseEphemeralDataProtectionProvider();
        services.AddAntiforgery(antiforgery =>
        {
            antiforgery.Cookie.Name = "__Host-TrustedProxy-Antiforgery";
            antiforgery.Cookie.SecurePolicy = CookieSecurePolicy.Always;
            antiforgery.Cookie.SameSite = SameSiteMode.Strict;
            antiforgery.Cookie.HttpOnly = true;

            // Our own X-Frame-Options: DENY and CSP frame-ancestors go on every page.
            antiforgery.SuppressXFrameOptionsHeader = true;
        });
        services.AddSingleton<IAntiforgeryAdditionalDataProvider, CertificateBoundAntiforgery>();
        return services;
    }

    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder app)
    {
        if (!app.ServiceProvider.GetRequiredService<IOptions<DashboardOptions>>().Value.Enabled)
        {
            return app;
        }

        var dashboard = app.MapGroup(DashboardLayout.Root)
            .RequiresAction(ProxyAction.Audit)
            .ExcludeFromDescription()
            .AddEndpointFilter(async (context, next) =>
            {
                var headers = context.HttpContext.Response.Headers;
                headers.CacheControl = "no-store";
                headers.ContentSecurityPolicy = ContentSecurityPolicy;
                headers.XContentTypeOptions = "nosniff";
                headers.XFrameOptions = "DENY";
                headers["Referrer-Policy"] = "no-referrer";
                return await next(context);
            });

        dashboard.MapGet(DashboardLayout.StylesheetPath[DashboardLayout.Root.Length..], () => TypedResults.Bytes(Stylesheet, "text/css; charset=utf-8"));
        dashboard.MapOverview();
        dashboard.MapPolicies();
        dashboard.MapWhatIf();
        dashboard.MapDecisionLog();
        dashboard.MapAuditLogStatus();
        dashboard.MapLeakTrace();
        dashboard.MapReports();
        return app;
    }

    private static byte[] ReadStylesheet()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("TrustedProxy.Server.Dashboard.dashboard.css")
            ?? throw new InvalidOperationException("the dashboard's stylesheet is not embedded in the server assembly");
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }
}

/// <summary>
/// Binds an antiforgery token to the client certificate it was issued to: a token one officer's
/// browser received does not validate for another certificate.
/// </summary>
internal sealed class CertificateBoundAntiforgery : IAntiforgeryAdditionalDataProvider
{
    public string GetAdditionalData(HttpContext context) => context.Proxy().Identity.CertificateSerial;

    public bool ValidateAdditionalData(HttpContext context, string additionalData) =>
        string.Equals(additionalData, context.Proxy().Identity.CertificateSerial, StringComparison.Ordinal);
}
