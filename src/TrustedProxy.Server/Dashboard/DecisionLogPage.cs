using Microsoft.Extensions.Options;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Policy;

namespace TrustedProxy.Server.Dashboard;

/// <summary>
/// The decision log, searchable: who (organisation, role, certificate), what (action, route),
/// when, the result and the rule that decided, with the reason. Newest first, a page at a time.
/// </summary>
internal static class DecisionLogPage
{
    public const int MaxRuleLength = 128;
    public const int MaxRequestIdLength = 64;

    private static readonly string[] Results = ["permit", "deny"];

    public static RouteGroupBuilder MapDecisionLog(this RouteGroupBuilder dashboard)
    {
        dashboard.MapGet("/decisions", RenderAsync);
        return dashboard;
    }

    private static async Task<IResult> RenderAsync(HttpContext context, DecisionLog log, IOptions<DashboardOptions> options)
    {
        var query = new DashboardQuery(context.Request.Query);
        var organisation = query.Text("organisation", OrganisationName.MaxLength);
        var role = query.Choice("role", ProxyRoles.Names);
        var action = query.Choice("action", Enum.GetNames<ProxyAction>());
        var result = query.Choice("result", Results);
        var rule = query.Text("rule", MaxRuleLength);
        var request = query.Text("request", MaxRequestIdLength);
        var from = query.Date("from");
        var to = query.Date("to");
        var before = query.Id("before");
        var after = query.Id("after");
        if (from > to)
        {
            query.Error("from must not be after to");
        }

        if (before is not null && after is not null)
        {
            query.Error("give before or after, not both");
        }

        if (query.Problem() is { } problem)
        {
            return problem;
        }

        var filter = new DecisionFilter
        {
            Organisation = organisation,
            Role = role,
            Action = action,
            Permitted = result is null ? null : result == "permit",
            Rule = rule,
            RequestId = request,
            From = from is { } f ? DayRange.StartOf(f) : null,
            Until = to is { } t ? DayRange.StartOf(t.AddDays(1)) : null,
        };
        var page = await log.SearchAsync(filter, options.Value.PageSize, before, after);
        var values = await log.FilterValuesAsync(options.Value.MaxPickListValues);
        KeyValuePair<string, string?>[] filterQuery =
        [
            new("organisation", organisation), new("role", role), new("action", action), new("result", result), new("rule", rule), new("request", request),
            new("from", from is { } a ? DayRange.Text(a) : null), new("to", to is { } b ? DayRange.Text(b) : null),
        ];

        return DashboardLayout.Page(context, DashboardLayout.Decisions, "Decision log", html =>
        {
            using (html.Open("form", ("method", "get"), ("action", DashboardLayout.Decisions.Path), ("class", "filters")))
            {
                FormFields.Input(html, "Organisation", "organisation", organisation, list: "organisations", maxLength: OrganisationName.MaxLength);
                FormFields.DataList(html, "organisations", values.Organisations);
                FormFields.Select(html, "Role", "role", ProxyRoles.Names, role);
                FormFields.Select(html, "Action", "action", Enum.GetNames<ProxyAction>(), action);
                FormFields.Select(html, "Result", "result", Results, result);
                FormFields.Input(html, "Rule", "rule", rule, list: "rules", maxLength: MaxRuleLength);
                FormFields.DataList(html, "rules", values.Rules);
                FormFields.Input(html, "Request id", "request", request, maxLength: MaxRequestIdLength);
                FormFields.Input(html, "From (day)", "from", from is { } c ? DayRange.Text(c) : null, type: "date");
                FormFields.Input(html, "To (day)", "to", to is { } d ? DayRange.Text(d) : null, type: "date");
                html.Element("button", "Search", ("type", "submit"));
                html.Element("a", "Clear", ("href", DashboardLayout.Decisions.Path));
            }

            html.Element("p", page.Total == 1 ? "1 decision matches." : $"{DashboardLayout.Count(page.Total)} decisions match.", ("class", "matches"));
            if (page.Decisions.Count > 0)
            {
                DecisionTable(html, page.Decisions);
            }

            using (html.Open("nav", ("class", "pager"), ("aria-label", "Pages")))
            {
                if (page.HasNewer)
                {
                    html.Element("a", "Newest", ("href", DashboardLayout.Link(DashboardLayout.Decisions.Path, filterQuery)));
                    html.Element("a", "Newer", ("href", DashboardLayout.Link(DashboardLayout.Decisions.Path, [.. filterQuery, new("after", DashboardLayout.Count(page.Decisions.Count > 0 ? page.Decisions[0].Id : before!.Value - 1))])));
                }

                if (page.HasOlder)
                {
                    html.Element("a", "Older", ("href", DashboardLayout.Link(DashboardLayout.Decisions.Path, [.. filterQuery, new("before", DashboardLayout.Count(page.Decisions.Count > 0 ? page.Decisions[^1].Id : after!.Value + 1))])));
                }
            }
        });
    }

    /// <summary>Decisions as a table, one row each.</summary>
    public static void DecisionTable(HtmlBuilder html, IReadOnlyList<DecisionRecord> decisions)
    {
        using (html.Open("table", ("class", "decisions")))
        {
            using (html.Open("thead"))
            using (html.Open("tr"))
            {
                foreach (var header in new[] { "Id", "When (UTC)", "Organisation", "Role", "Certificate", "Action", "Resource", "Result", "Rule", "Reason", "Request" })
                {
                    html.Element("th", header, ("scope", "col"));
                }
            }

            using (html.Open("tbody"))
            {
                foreach (var decision in decisions)
                {
                    using (html.Open("tr"))
                    {
                        html.Element("td", DashboardLayout.Count(decision.Id));
                        html.Element("td", DashboardLayout.Time(decision.At));
                        html.Element("td", decision.Organisation);
                        html.Element("td", decision.Role);
                        html.Element("td", decision.CertificateSerial, ("class", "mono"));
                        html.Element("td", decision.Action);
                        html.Element("td", decision.Resource, ("class", "mono"));
                        html.Element("td", decision.Permitted ? "permit" : "deny", ("class", decision.Permitted ? "permit" : "deny"));
                        html.Element("td", decision.Rule);
                        html.Element("td", decision.Reason);
                        html.Element("td", decision.RequestId, ("class", "mono"));
                    }
                }
            }
        }
    }
}
