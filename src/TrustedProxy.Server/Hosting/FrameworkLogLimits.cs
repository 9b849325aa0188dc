namespace TrustedProxy.Server.Hosting;

/// <summary>
/// ASP.NET Core's own categories that write a request's raw target, Host header or path (with
/// its DICOM UIDs) into log lines or scopes: request start and finish, route matching, Kestrel's
/// bad-request details. They are held at least at the level given here whatever the configuration
/// says, for every provider, so that no logging setting brings identifiers back into the logs; the
/// proxy's own lines name requests by route pattern (<see cref="LogText"/>).
/// </summary>
internal static class FrameworkLogLimits
{
    private static readonly (string Category, LogLevel Least)[] Limits =
    [
        // Request starting/finished with the full URL, and the request scope (RequestPath) every line under it carries.
        ("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None),

        // Debug lines name the request path matched or not matched.
        ("Microsoft.AspNetCore.Routing", LogLevel.Information),

        // Debug lines carry the request target of a malformed request.
        ("Microsoft.AspNetCore.Server.Kestrel", LogLevel.Information),
        ("Microsoft.AspNetCore.HttpLogging", LogLevel.None),
        ("Microsoft.AspNetCore.W3CLogging", LogLevel.None),
    ];

    public static IServiceCollection AddFrameworkLogLimits(this IServiceCollection services) =>
        services.PostConfigure<LoggerFilterOptions>(options =>
        {
            // The configuration may ask for less than a limit (Warning), never for more. A rule for
            // a category under one of these would win by being more specific, so it is raised; and a
            // provider-specific rule wins over any provider-less one, so a limiting rule is added for
            // every provider the rules name, at the level that provider would otherwise have had.
            var providers = options.Rules.Select(r => r.ProviderName).Append(null).Distinct().ToList();
            var added = new List<LoggerFilterRule>();
            foreach (var provider in providers)
            {
                foreach (var (category, least) in Limits)
                {
                    added.Add(new LoggerFilterRule(provider, category, Max(EffectiveLevel(options, provider, category), least), filter: null));
                }
            }

            for (var i = 0; i < options.Rules.Count; i++)
            {
                var rule = options.Rules[i];
                if (Limits.FirstOrDefault(l => Under(rule.CategoryName, l.Category)) is { Category: not null } limit)
                {
                    options.Rules[i] = new LoggerFilterRule(rule.ProviderName, rule.CategoryName, Max(rule.LogLevel ?? LogLevel.Trace, limit.Least), rule.Filter);
                }
            }

            foreach (var rule in added)
            {
                options.Rules.Add(rule);
            }
        });

    // The level the framework's rule selection would give the category for this provider: a
    // provider-specific rule over a provider-less one, then the longest category prefix, then the last.
    private static LogLevel EffectiveLevel(LoggerFilterOptions options, string? provider, string category)
    {
        LoggerFilterRule? best = null;
        foreach (var rule in options.Rules)
        {
            if ((rule.ProviderName is not null && rule.ProviderName != provider) ||
                (rule.CategoryName is not null && !category.StartsWith(rule.CategoryName, StringComparison.OrdinalIgnoreCase)))
            {
                continue;
            }

            if (best is not null && best.ProviderName is not null && rule.ProviderName is null)
            {
                continue;
            }

            var sameKind = best is not null && (best.ProviderName is null) == (rule.ProviderName is null);
            if (sameKind && best!.CategoryName is not null && (rule.CategoryName is null || rule.CategoryName.Length < best.CategoryName.Length))
            {
                continue;
            }

            best = rule;
        }

        return best is null ? options.MinLevel : best.LogLevel ?? LogLevel.Trace;
    }

    private static LogLevel Max(LogLevel a, LogLevel b) => a > b ? a : b;

    private static bool Under(string? ruleCategory, string category) =>
        ruleCategory is not null && ruleCategory.StartsWith(category + ".", StringComparison.OrdinalIgnoreCase);
}
