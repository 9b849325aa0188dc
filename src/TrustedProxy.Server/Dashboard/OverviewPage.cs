using Microsoft.Extensions.Options;
using TrustedProxy.Policy;

namespace TrustedProxy.Server.Dashboard;

/// <summary>The landing page: the last day's decisions at a glance and the latest denials.</summary>
internal static class OverviewPage
{
    public static RouteGroupBuilder MapOverview(this RouteGroupBuilder dashboard)
    {
        dashboard.MapGet(string.Empty, RenderAsync);
        return dashboard;
    }

    private static async Task<IResult> RenderAsync(HttpContext context, DecisionLog log, IOptions<DashboardOptions> options, TimeProvider time)
    {
        var now = time.GetUtcNow();
        var lastDay = new DecisionFilter { From = now.AddDays(-1) };
        var permitted = await log.CountAsync(lastDay with { Permitted = true });
        var denied = await log.CountAsync(lastDay with { Permitted = false });
        var denials = options.Value.OverviewDenials > 0
            ? (await log.SearchAsync(new DecisionFilter { Permitted = false }, options.Value.OverviewDenials)).Decisions
            : [];
        var today = DateOnly.FromDateTime(now.UtcDateTime);

        return DashboardLayout.Page(context, DashboardLayout.Overview, "Overview", html =>
        {
            html.Element("h2", "The last 24 hours");
            using (html.Open("table", ("class", "figures")))
            using (html.Open("tbody"))
            {
                Figure(html, "Decisions", permitted + denied);
                Figure(html, "Permitted", permitted);
                Figure(html, "Denied", denied);
            }

            using (html.Open("p"))
            {
                html.Element("a", "This month's summary report", ("href", DashboardLayout.Link(DashboardLayout.Reports.Path, [new("from", DayRange.Text(new DateOnly(today.Year, today.Month, 1))), new("to", DayRange.Text(today))])));
            }

            using (html.Open("p"))
            {
                html.Element("a", "Verify the audit log now", ("href", DashboardLayout.AuditLog.Path));
            }

            html.Element("h2", "Latest denials");
            if (denials.Count == 0)
            {
                html.Element("p", "No request has been denied.");
            }
            else
            {
                DecisionLogPage.DecisionTable(html, denials);
                using (html.Open("p"))
                {
                    html.Element("a", "Every denial in the decision log", ("href", DashboardLayout.Link(DashboardLayout.Decisions.Path, [new("result", "deny")])));
                }
            }
        });
    }

    private static void Figure(HtmlBuilder html, string label, long value)
    {
        using (html.Open("tr"))
        {
            html.Element("th", label, ("scope", "row"));
            html.Element("td", DashboardLayout.Count(value));
        }
    }
}
