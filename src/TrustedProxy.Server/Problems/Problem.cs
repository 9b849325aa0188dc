using Microsoft.AspNetCore.Mvc;

namespace TrustedProxy.Server.Problems;

/// <summary>
/// Writes application/problem+json (RFC 9457). The one way errors leave the proxy: a stable type,
/// a title, a detail written for the caller, never an exception message or patient data. A
/// browser (a request that prefers text/html, as the dashboard's pages are asked for) gets the
/// same problem rendered as a page.
/// </summary>
internal static class Problem
{
    public const string JsonMediaType = "application/problem+json";

    public static IResult Result(ProblemType type, string detail, IDictionary<string, object?>? extensions = null) =>
        new NegotiatedProblem(Create(type, detail, extensions));

    public static Task Write(HttpContext context, ProblemType type, string detail, IDictionary<string, object?>? extensions = null)
    {
        var problem = Create(type, detail, extensions);
        context.Response.StatusCode = type.Status;
        return ProblemHtml.IsPreferredBy(context.Request)
            ? ProblemHtml.WriteAsync(context, problem)
            : context.Response.WriteAsJsonAsync(problem, options: null, contentType: JsonMediaType);
    }

    private static ProblemDetails Create(ProblemType type, string detail, IDictionary<string, object?>? extensions)
    {
        var problem = new ProblemDetails { Type = type.Uri, Title = type.Title, Status = type.Status, Detail = detail };
        foreach (var (key, value) in extensions ?? new Dictionary<string, object?>())
        {
            problem.Extensions[key] = value;
        }

        return problem;
    }

    /// <summary>A problem result that picks its rendering when it runs, from the request's Accept header.</summary>
    private sealed class NegotiatedProblem(ProblemDetails problem) : IResult, IStatusCodeHttpResult, IValueHttpResult, IValueHttpResult<ProblemDetails>, IContentTypeHttpResult
    {
        public int? StatusCode => problem.Status;

        public ProblemDetails Value => problem;

        object? IValueHttpResult.Value => problem;

        public string ContentType => JsonMediaType;

        public Task ExecuteAsync(HttpContext context)
        {
            if (ProblemHtml.IsPreferredBy(context.Request))
            {
                context.Response.StatusCode = problem.Status ?? StatusCodes.Status500InternalServerError;
                return ProblemHtml.WriteAsync(context, problem);
            }

            return TypedResults.Problem(problem).ExecuteAsync(context);
        }
    }
}
