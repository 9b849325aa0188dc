using System.Globalization;
using TrustedProxy.Audit;

namespace TrustedProxy.Server.Dashboard;

/// <summary>
/// The audit log's verification status: <see cref="AuditLog.Verify"/> run when the page is opened
/// (every entry's hash, the chain, every checkpoint's signature and root, the latest checkpoint
/// file), as <c>GET /api/v1/audit/verification</c> runs it, with links to take a signed checkpoint
/// and the public key away for offline verification.
/// </summary>
internal static class AuditLogPage
{
    public const string CheckpointPath = "/api/v1/audit/checkpoint";
    public const string PublicKeyPath = "/api/v1/audit/public-key";
    public const string LogPath = "/api/v1/audit/log";

    public static RouteGroupBuilder MapAuditLogStatus(this RouteGroupBuilder dashboard)
    {
        dashboard.MapGet("/audit", RenderAsync);
        return dashboard;
    }

    private static async Task<IResult> RenderAsync(HttpContext context, AuditLog log)
    {
        // A scan of the whole file: off the request thread, as the API does.
        var verification = await Task.Run(log.Verify, context.RequestAborted);

        return DashboardLayout.Page(context, DashboardLayout.AuditLog, "Audit log", html =>
        {
            using (html.Open("section", ("class", verification.Intact ? "audit-status intact" : "audit-status broken"), ("aria-label", "Verification")))
            {
                html.Element("h2", verification.Intact ? "Intact" : "NOT intact");
                html.Element("p", verification.Summary);
                using (html.Open("dl"))
                {
                    html.Element("dt", "Entries").Element("dd", DashboardLayout.Count(verification.Entries));
                    html.Element("dt", "Signed checkpoints").Element("dd", DashboardLayout.Count(verification.Checkpoints));
                    if (verification.LastCheckpoint is { } last)
                    {
                        html.Element("dt", "Last checkpoint").Element("dd", string.Create(CultureInfo.InvariantCulture, $"covers {last.Size} entries, signed {last.Time}"));
                        html.Element("dt", "Last checkpoint's root").Element("dd", last.Root, ("class", "mono"));
                        html.Element("dt", "Signing key").Element("dd", last.KeyId, ("class", "mono"));
                    }
                    else
                    {
                        html.Element("dt", "Last checkpoint").Element("dd", "none yet");
                    }

                    html.Element("dt", "Entries not yet under a checkpoint").Element("dd", DashboardLayout.Count(verification.UnanchoredEntries));
                }
            }

            if (verification.Problem is { } problem)
            {
                using (html.Open("section", ("class", "audit-problem"), ("aria-label", "First problem")))
                {
                    html.Element("h2", "First problem found");
                    using (html.Open("dl"))
                    {
                        html.Element("dt", "Kind").Element("dd", problem.Kind);
                        html.Element("dt", "Line").Element("dd", DashboardLayout.Count(problem.Line));
                        html.Element("dt", "Entry").Element("dd", problem.Entry is { } entry ? DashboardLayout.Count(entry) : "unknown");
                        html.Element("dt", "Message").Element("dd", problem.Message);
                    }
                }
            }

            html.Element("h2", "Verify it elsewhere");
            html.Element("p", "Keep a signed checkpoint away from the proxy: a later verification against it detects truncation and rollback. `tproxy audit verify --log audit.log --public-key audit-key.pem --checkpoint checkpoint.json` checks a downloaded log offline.");
            using (html.Open("ul", ("class", "downloads")))
            {
                Download(html, "A checkpoint signed now", CheckpointPath, "checkpoint.json");
                Download(html, "The public key", PublicKeyPath, "audit-key.pem");
                Download(html, "The log as it stands", LogPath, "audit.log");
            }
        });
    }

    private static void Download(HtmlBuilder html, string label, string path, string fileName)
    {
        using (html.Open("li"))
        {
            html.Element("a", label, ("href", path), ("download", fileName));
        }
    }
}
