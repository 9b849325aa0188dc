using Microsoft.Extensions.Options;
using TrustedProxy.Policy;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Server.Dashboard;

/// <summary>
/// The policy for compliance officers to read: the files in force with their text, the last refused
/// edit, and every version put in force, each with a line diff against the version before it. It
/// reads the same <see cref="PolicyStore"/> and <see cref="PolicyHistory"/> as <c>/api/v1/policy…</c>.
/// </summary>
internal static class PoliciesPage
{
    public static RouteGroupBuilder MapPolicies(this RouteGroupBuilder dashboard)
    {
        dashboard.MapGet("/policies", RenderAsync);
        dashboard.MapGet("/policies/{id:long}", RenderVersionAsync);
        return dashboard;
    }

    /// <summary>Where a version's diff against the one before it is shown.</summary>
    public static string VersionPath(long id) => $"{DashboardLayout.Policies.Path}/{id}";

    private static async Task<IResult> RenderAsync(HttpContext context, PolicyStore store, PolicyHistory history, IOptions<DashboardOptions> options)
    {
        var query = new DashboardQuery(context.Request.Query);
        var before = query.Id("before");
        if (query.Problem() is { } problem)
        {
            return problem;
        }

        var set = store.Current;
        var version = store.CurrentVersion;
        var rejection = store.LastRejection;
        var pageSize = options.Value.PageSize;
        var versions = await history.ListAsync(before, pageSize + 1);

        return DashboardLayout.Page(context, DashboardLayout.Policies, "Policies", html =>
        {
            html.Element("h2", "In force");
            using (html.Open("dl", ("class", "policy-version")))
            {
                html.Element("dt", "Version").Element("dd", version.Hash, ("class", "mono"));
                html.Element("dt", "Loaded at (UTC)").Element("dd", DashboardLayout.Time(version.LoadedAt));
                html.Element("dt", "Rules").Element("dd", DashboardLayout.Count(set.RuleCount));
                html.Element("dt", "Consent entries").Element("dd", DashboardLayout.Count(set.ConsentCount));
                html.Element("dt", "Directory").Element("dd", store.Directory, ("class", "mono"));
            }

            if (rejection is not null)
            {
                using (html.Open("section", ("class", "rejection"), ("aria-label", "Last refused change")))
                {
                    html.Element("h2", $"Last refused change, {DashboardLayout.Time(rejection.At)} UTC: the version above stayed in force");
                    using (html.Open("ul"))
                    {
                        foreach (var error in rejection.Errors)
                        {
                            html.Element("li", error.ToString(), ("class", "mono"));
                        }
                    }
                }
            }

            foreach (var file in set.Files)
            {
                using (html.Open("section", ("class", "policy-file"), ("aria-label", file.Name)))
                {
                    html.Element("h3", file.Name);
                    html.Element("p", $"SHA-256 {file.Sha256}", ("class", "mono"));
                    Listing(html, file.Content);
                }
            }

            html.Element("h2", "History");
            html.Element("p", "Every version the proxy put in force, newest first. A version's diff shows what changed from the version before it.");
            using (html.Open("table", ("class", "history")))
            {
                using (html.Open("thead"))
                using (html.Open("tr"))
                {
                    foreach (var heading in new[] { "Id", "Version", "Loaded at (UTC)", "Files", "Changes" })
                    {
                        html.Element("th", heading, ("scope", "col"));
                    }
                }

                using (html.Open("tbody"))
                {
                    foreach (var item in versions.Take(pageSize))
                    {
                        using (html.Open("tr"))
                        {
                            html.Element("td", DashboardLayout.Count(item.Id));
                            html.Element("td", PolicyStore.Short(item.Hash), ("class", "mono"), ("title", item.Hash));
                            html.Element("td", DashboardLayout.Time(item.LoadedAt));
                            html.Element("td", string.Join(", ", item.Files.Select(f => f.Name)));
                            using (html.Open("td"))
                            {
                                html.Element("a", $"Diff of version {item.Id}", ("href", VersionPath(item.Id)));
                            }
                        }
                    }
                }
            }

            if (versions.Count > pageSize)
            {
                using (html.Open("nav", ("class", "pager"), ("aria-label", "History pages")))
                {
                    html.Element("a", "Older versions", ("href", DashboardLayout.Link(DashboardLayout.Policies.Path, [new("before", DashboardLayout.Count(versions[pageSize - 1].Id))])));
                }
            }
        });
    }

    private static async Task<IResult> RenderVersionAsync(long id, HttpContext context, PolicyHistory history, IOptions<DashboardOptions> options)
    {
        if (await history.FindAsync(id) is not { } version)
        {
            return Problem.Result(ProblemTypes.PolicyVersionNotFound, $"no policy version {id}");
        }

        var previous = (await history.ListAsync(id, 1)) is [var listed] ? await history.FindAsync(listed.Id) : null;
        var maxCells = options.Value.MaxDiffCells;
        var names = (previous?.Files ?? []).Select(f => f.Name).Union(version.Files.Select(f => f.Name)).Order(StringComparer.Ordinal);

        return DashboardLayout.Page(context, DashboardLayout.Policies, $"Policy version {id}", html =>
        {
            using (html.Open("dl", ("class", "policy-version")))
            {
                html.Element("dt", "Version").Element("dd", version.Hash, ("class", "mono"));
                html.Element("dt", "Loaded at (UTC)").Element("dd", DashboardLayout.Time(version.LoadedAt));
                html.Element("dt", "Compared with").Element("dd", previous is null
                    ? "nothing: the first version recorded, every line is shown as added"
                    : $"version {previous.Id} ({PolicyStore.Short(previous.Hash)}), loaded {DashboardLayout.Time(previous.LoadedAt)}");
            }

            foreach (var name in names)
            {
                var old = previous?.Files.FirstOrDefault(f => f.Name == name);
                var now = version.Files.FirstOrDefault(f => f.Name == name);
                using (html.Open("section", ("class", "policy-file"), ("aria-label", name)))
                {
                    html.Element("h3", name);
                    if (old is not null && now is not null && old.Sha256 == now.Sha256)
                    {
                        html.Element("p", "Unchanged.");
                        continue;
                    }

                    html.Element("p", (old, now) switch
                    {
                        (null, _) => "Added in this version.",
                        (_, null) => "Removed in this version.",
                        _ => "Changed in this version.",
                    });
                    if (LineDiff.Compute(old?.Content, now?.Content, maxCells) is { } diff)
                    {
                        DiffTable(html, diff);
                    }
                    else
                    {
                        html.Element("p", $"The change is too large to diff here (more than {maxCells} line pairs, TrustedProxy:Dashboard:MaxDiffCells); GET /api/v1/policy/history/{{id}} gives both versions' text.");
                    }
                }
            }

            using (html.Open("p"))
            {
                html.Element("a", "Back to the policies", ("href", DashboardLayout.Policies.Path));
            }
        });
    }

    /// <summary>A policy file as numbered lines, so that an error's file:line:column can be found.</summary>
    private static void Listing(HtmlBuilder html, string content)
    {
        var lines = LineDiff.Lines(content);
        using (html.Open("table", ("class", "listing")))
        using (html.Open("tbody"))
        {
            for (var i = 0; i < lines.Length; i++)
            {
                using (html.Open("tr"))
                {
                    html.Element("td", DashboardLayout.Count(i + 1), ("class", "line-number"));
                    html.Element("td", lines[i], ("class", "code"));
                }
            }
        }
    }

    private static void DiffTable(HtmlBuilder html, IReadOnlyList<DiffLine> diff)
    {
        using (html.Open("table", ("class", "diff")))
        {
            using (html.Open("thead"))
            using (html.Open("tr"))
            {
                html.Element("th", "Old", ("scope", "col"));
                html.Element("th", "New", ("scope", "col"));
                html.Element("th", string.Empty, ("scope", "col"));
                html.Element("th", "Line", ("scope", "col"));
            }

            using (html.Open("tbody"))
            {
                foreach (var line in diff)
                {
                    var (kind, mark) = line.Kind switch
                    {
                        DiffKind.Added => ("added", "+"),
                        DiffKind.Removed => ("removed", "-"),
                        _ => ((string?)null, " "),
                    };
                    using (html.Open("tr", ("class", kind)))
                    {
                        html.Element("td", line.OldNumber is { } o ? DashboardLayout.Count(o) : null, ("class", "line-number"));
                        html.Element("td", line.NewNumber is { } n ? DashboardLayout.Count(n) : null, ("class", "line-number"));
                        html.Element("td", mark, ("class", "mark"));
                        html.Element("td", line.Text, ("class", "code"));
                    }
                }
            }
        }
    }
}
