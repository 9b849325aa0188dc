using Microsoft.AspNetCore.Mvc;

namespace TrustedProxy.Server.Problems;

/// <summary>
/// Writes application/problem+json (RFC 9457). The one way errors leave the proxy: a stable type,
/// a title, a detail written for the caller, never an exception message or patient data.
/// </summary>
internal static class Problem
{
    public static IResult Result(ProblemType type, string detail, IDictionary<string, object?>? extensions = null) =>
        TypedResults.Problem(Create(type, detail, extensions));

    public static Task Write(HttpContext context, ProblemType type, string detail, IDictionary<string, object?>? extensions = null)
    {
        context.Response.StatusCode = type.Status;
        return context.Response.WriteAsJsonAsync(Create(type, detail, extensions), options: null, contentType: "application/problem+json");
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
}
