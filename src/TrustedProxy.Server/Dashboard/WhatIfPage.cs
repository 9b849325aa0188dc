using System.Globalization;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Server.Dashboard;

/// <summary>
/// The what-if form: a request described by its subject, action, purpose, time and record is
/// evaluated against the policy in force through <see cref="WhatIf.EvaluateAsync"/>, the evaluation
/// of <c>POST /api/v1/policy/what-if</c>, and nothing is performed. It posts, so it carries an
/// antiforgery token.
/// </summary>
internal static class WhatIfPage
{
    /// <summary>What a <c>datetime-local</c> input sends (seconds when the browser adds them).</summary>
    private static readonly string[] TimeFormats = ["yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd'T'HH:mm:ss"];

    public static RouteGroupBuilder MapWhatIf(this RouteGroupBuilder dashboard)
    {
        dashboard.MapGet("/what-if", (HttpContext context, IAntiforgery antiforgery) => Render(context, antiforgery, new Dictionary<string, string?>(), result: null));
        dashboard.MapPost("/what-if", EvaluateAsync);
        return dashboard;
    }

    private static async Task<IResult> EvaluateAsync(
        HttpContext context, IAntiforgery antiforgery, IPolicyDecisionPoint decisionPoint, RecordIndex index, TimeProvider time, IOptions<DashboardOptions> options, ILoggerFactory loggers)
    {
        if (!context.Request.HasFormContentType)
        {
            return Problem.Result(ProblemTypes.UnsupportedMediaType, "submit the what-if form (application/x-www-form-urlencoded)");
        }

        var limit = options.Value.MaxWhatIfFormBytes;
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = limit;
        }

        context.Features.Set<IFormFeature>(new FormFeature(context.Request, new FormOptions
        {
            BufferBody = false,
            ValueCountLimit = 32,
            ValueLengthLimit = limit,
            MultipartBodyLengthLimit = limit,
        }));

        if (!await antiforgery.IsRequestValidAsync(context))
        {
            DashboardLog.AntiforgeryRefused(loggers.CreateLogger("TrustedProxy.Dashboard"), LogText.Route(context));
            return Problem.Result(ProblemTypes.AntiforgeryFailed, "the form's antiforgery token is missing, expired or not yours; open the what-if page again and submit from there");
        }

        var form = await context.Request.ReadFormAsync(context.RequestAborted);
        var fields = Fields.ToDictionary(f => f, f => form[f].Count == 1 && form[f].ToString().Trim() is { Length: > 0 } value ? value : null, StringComparer.Ordinal);
        var errors = new List<string>();
        errors.AddRange(Fields.Where(f => form[f].Count > 1).Select(f => $"give {f} once"));

        DateTimeOffset? at = null;
        if (fields["at"] is { } atText)
        {
            if (DateTime.TryParseExact(atText, TimeFormats, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var parsed))
            {
                at = new DateTimeOffset(parsed, TimeSpan.Zero);
            }
            else
            {
                errors.Add("at must be a UTC time as yyyy-MM-ddTHH:mm");
            }
        }

        DateOnly? studyDate = null;
        if (fields["studyDate"] is { } dateText)
        {
            if (DateOnly.TryParseExact(dateText, DashboardQuery.DateFormat, CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
            {
                studyDate = day;
            }
            else
            {
                errors.Add($"studyDate must be a date as {DashboardQuery.DateFormat}");
            }
        }

        if (errors.Count > 0)
        {
            return Problem.Result(ProblemTypes.BadRequest, string.Join("; ", errors));
        }

        var record = fields["handle"] is not null || fields["origin"] is not null || fields["patient"] is not null || fields["modality"] is not null || studyDate is not null
            ? new WhatIfRecord(fields["handle"], fields["origin"], fields["patient"], fields["modality"], studyDate)
            : null;
        var request = new WhatIfRequest(
            fields["organisation"] ?? string.Empty, fields["role"] ?? string.Empty, fields["action"] ?? string.Empty, fields["purpose"], at, fields["justification"], Record: record);
        var (result, problem) = await WhatIf.EvaluateAsync(request, decisionPoint, index, time.GetUtcNow());
        return problem ?? Render(context, antiforgery, fields, result);
    }

    private static readonly string[] Fields = ["organisation", "role", "action", "purpose", "at", "justification", "handle", "origin", "patient", "modality", "studyDate"];

    private static IResult Render(HttpContext context, IAntiforgery antiforgery, IReadOnlyDictionary<string, string?> fields, WhatIfResult? result)
    {
        var tokens = antiforgery.GetAndStoreTokens(context);
        string? Field(string name) => fields.TryGetValue(name, out var value) ? value : null;

        return DashboardLayout.Page(context, DashboardLayout.WhatIf, "What if", html =>
        {
            if (result is not null)
            {
                Result(html, result);
            }

            html.Element("p", "Describe a request; the policy in force decides it as the enforcement point would, and nothing is performed. Give a stored record's handle, or a record's attributes, for the record-level decision; neither for the request-level one.");
            using (html.Open("form", ("method", "post"), ("action", DashboardLayout.WhatIf.Path), ("class", "filters what-if")))
            {
                html.Void("input", ("type", "hidden"), ("name", tokens.FormFieldName), ("value", tokens.RequestToken));
                FormFields.Input(html, "Organisation", "organisation", Field("organisation"), maxLength: WhatIf.MaxTextLength);
                FormFields.Select(html, "Role", "role", ProxyRoles.Names, Field("role"), anyLabel: "choose");
                FormFields.Select(html, "Action", "action", ProxyActions.Names, Field("action"), anyLabel: "choose");
                FormFields.Select(html, "Purpose", "purpose", PurposesOfUse.Names, Field("purpose"), anyLabel: "not declared (treatment)");
                FormFields.Input(html, "Time (UTC, empty: now)", "at", Field("at"), type: "datetime-local");
                FormFields.Input(html, "Break-glass justification", "justification", Field("justification"), maxLength: WhatIf.MaxTextLength * 16);
                FormFields.Input(html, "Record handle", "handle", Field("handle"), maxLength: WhatIf.MaxTextLength);
                FormFields.Input(html, "Record origin", "origin", Field("origin"), maxLength: WhatIf.MaxTextLength);
                FormFields.Input(html, "Patient pseudonym", "patient", Field("patient"), maxLength: WhatIf.MaxTextLength);
                FormFields.Input(html, "Modality", "modality", Field("modality"), maxLength: 16);
                FormFields.Input(html, "Study date", "studyDate", Field("studyDate"), type: "date");
                html.Element("button", "Evaluate", ("type", "submit"));
            }
        });
    }

    private static void Result(HtmlBuilder html, WhatIfResult result)
    {
        using (html.Open("section", ("class", "what-if-result"), ("aria-label", "Decision")))
        {
            html.Element("h2", result.Permitted ? "Permit" : "Deny", ("class", result.Permitted ? "permit" : "deny"));
            using (html.Open("dl"))
            {
                html.Element("dt", "Deciding rule").Element("dd", result.Rule);
                html.Element("dt", "Reason").Element("dd", result.Reason);
                html.Element("dt", "Level").Element("dd", result.Level);
                html.Element("dt", "Break-glass").Element("dd", result.BreakGlass ? "yes: an alert would be raised" : "no");
                html.Element("dt", "Policy version").Element("dd", result.PolicyVersion, ("class", "mono"));
                if (result.Obligations is { } obligations)
                {
                    html.Element("dt", "View").Element("dd", obligations.Profile is { } profile ? $"{obligations.View} ({profile})" : obligations.View);
                    html.Element("dt", "Fingerprint").Element("dd", obligations.Fingerprint ? "yes" : "no");
                    html.Element("dt", "Smallest oblivious set").Element("dd", DashboardLayout.Count(obligations.MinObliviousSet));
                }
            }

            html.Element("h3", "Rules that matched");
            if (result.Matched.Count == 0)
            {
                html.Element("p", "None: nothing permits the request, so it is denied by default.");
            }
            else
            {
                using (html.Open("table", ("class", "matched")))
                {
                    using (html.Open("thead"))
                    using (html.Open("tr"))
                    {
                        foreach (var heading in new[] { "Rule", "Kind", "Effect", "Source", "Part in the outcome", "Detail" })
                        {
                            html.Element("th", heading, ("scope", "col"));
                        }
                    }

                    using (html.Open("tbody"))
                    {
                        foreach (var rule in result.Matched)
                        {
                            using (html.Open("tr"))
                            {
                                html.Element("td", rule.Rule).Element("td", rule.Kind).Element("td", rule.Effect)
                                    .Element("td", rule.Source, ("class", "mono")).Element("td", rule.Status).Element("td", rule.Detail);
                            }
                        }
                    }
                }
            }

            if (result.Notes.Count > 0)
            {
                using (html.Open("ul", ("class", "notes")))
                {
                    foreach (var note in result.Notes)
                    {
                        html.Element("li", note);
                    }
                }
            }
        }
    }
}
