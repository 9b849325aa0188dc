using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Net.Http.Headers;
using TrustedProxy.Server.Dashboard;

namespace TrustedProxy.Server.Problems;

/// <summary>
/// A problem as a page, for browsers: the same type, title, status, detail and extensions as the
/// JSON, every value HTML-encoded, no script, nothing cached.
/// </summary>
internal static class ProblemHtml
{
    private const string HtmlMediaType = "text/html";

    /// <summary>
    /// True when the Accept header names text/html with a higher quality than any JSON type it
    /// names. Browsers ask for text/html first; API clients send JSON types, a wildcard or nothing,
    /// and keep problem+json.
    /// </summary>
    public static bool IsPreferredBy(HttpRequest request)
    {
        if (!MediaTypeHeaderValue.TryParseList(request.Headers.Accept, out var accepted))
        {
            return false;
        }

        double html = 0, json = 0;
        foreach (var type in accepted)
        {
            var quality = type.Quality ?? 1.0;
            if (type.MediaType.Equals(HtmlMediaType, StringComparison.OrdinalIgnoreCase))
            {
                html = Math.Max(html, quality);
            }
            else if (type.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) ||
                     type.MediaType.Equals(Problem.JsonMediaType, StringComparison.OrdinalIgnoreCase))
            {
                json = Math.Max(json, quality);
            }
        }

        return html > 0 && html > json;
    }

    public static Task WriteAsync(HttpContext context, ProblemDetails problem)
    {
        var headers = context.Response.Headers;
        headers.ContentType = "text/html; charset=utf-8";
        headers.CacheControl = "no-store";
        headers.ContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";

        var status = (problem.Status ?? StatusCodes.Status500InternalServerError).ToString(CultureInfo.InvariantCulture);
        var html = new HtmlBuilder();
        using (html.Open("html", ("lang", "en")))
        {
            using (html.Open("head"))
            {
                html.Void("meta", ("charset", "utf-8"));
                html.Element("title", $"{status} {problem.Title} - TrustedProxy");
            }

            using (html.Open("body"))
            using (html.Open("main", ("class", "problem")))
            {
                html.Element("h1", problem.Title);
                html.Element("p", problem.Detail);
                using (html.Open("dl"))
                {
                    html.Element("dt", "Status").Element("dd", status);
                    html.Element("dt", "Type").Element("dd", problem.Type);
                    foreach (var (key, value) in problem.Extensions)
                    {
                        html.Element("dt", key).Element("dd", Convert.ToString(value, CultureInfo.InvariantCulture));
                    }
                }
            }
        }

        return context.Response.WriteAsync(html.ToString(), context.RequestAborted);
    }
}
