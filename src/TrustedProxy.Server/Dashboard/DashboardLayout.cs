using System.Globalization;
using TrustedProxy.Policy;
using TrustedProxy.Server.Policy;

namespace TrustedProxy.Server.Dashboard;

/// <summary>A page of the dashboard as the navigation shows it.</summary>
internal sealed record DashboardSection(string Path, string Label);

/// <summary>The frame every dashboard page shares: head, navigation, who is signed in, the page's content.</summary>
internal static class DashboardLayout
{
    public const string Root = "/dashboard";
    public const string StylesheetPath = Root + "/dashboard.css";

    public static readonly DashboardSection Overview = new(Root, "Overview");
    public static readonly DashboardSection Policies = new(Root + "/policies", "Policies");
    public static readonly DashboardSection WhatIf = new(Root + "/what-if", "What if");
    public static readonly DashboardSection Decisions = new(Root + "/decisions", "Decision log");
    public static readonly DashboardSection AuditLog = new(Root + "/audit", "Audit log");
    public static readonly DashboardSection Trace = new(Root + "/trace", "Leak tracing");
    public static readonly DashboardSection Reports = new(Root + "/reports", "Reports");

    /// <summary>The navigation, in order. A new page adds its section here.</summary>
    public static IReadOnlyList<DashboardSection> Sections { get; } = [Overview, Policies, WhatIf, Decisions, AuditLog, Trace, Reports];

    public static IResult Page(HttpContext context, DashboardSection section, string title, Action<HtmlBuilder> content)
    {
        var identity = context.Proxy().Identity;
        var html = new HtmlBuilder();
        using (html.Open("html", ("lang", "en")))
        {
            using (html.Open("head"))
            {
                html.Void("meta", ("charset", "utf-8"));
                html.Void("meta", ("name", "viewport"), ("content", "width=device-width, initial-scale=1"));
                html.Element("title", $"{title} - TrustedProxy compliance");
                html.Void("link", ("rel", "stylesheet"), ("href", StylesheetPath));
            }

            using (html.Open("body"))
            {
                using (html.Open("header"))
                {
                    html.Element("p", "TrustedProxy compliance", ("class", "brand"));
                    using (html.Open("nav", ("aria-label", "Dashboard")))
                    using (html.Open("ul"))
                    {
                        foreach (var item in Sections)
                        {
                            using (html.Open("li"))
                            {
                                html.Element("a", item.Label, ("href", item.Path), ("aria-current", item == section ? "page" : null));
                            }
                        }
                    }

                    html.Element("p", $"Signed in by certificate as {identity.Organisation} ({ProxyRoles.ToName(identity.Role)}), serial {identity.CertificateSerial}", ("class", "identity"));
                }

                using (html.Open("main"))
                {
                    html.Element("h1", title);
                    content(html);
                }

                using (html.Open("footer"))
                {
                    html.Element("p", "Times are UTC. Every page you open here is itself a decision in the log.");
                }
            }
        }

        return TypedResults.Content(html.ToString(), "text/html; charset=utf-8");
    }

    public static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    public static string Count(long count) => count.ToString(CultureInfo.InvariantCulture);

    /// <summary>A path with a query string of the given non-empty values, encoded.</summary>
    public static string Link(string path, IEnumerable<KeyValuePair<string, string?>> query) =>
        path + QueryString.Create(query.Where(p => !string.IsNullOrEmpty(p.Value))).ToUriComponent();
}
