using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Policy;
using TrustedProxy.Server.Policy;

namespace TrustedProxy.FunctionalTests.Policy;

/// <summary>The application's own route table: every endpoint with each of its methods, and a path that reaches it.</summary>
internal static class Routes
{
    public static IReadOnlyList<(RouteEndpoint Endpoint, string Method, ProxyAction? Action)> All(IServiceProvider services) =>
        services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (e, m, e.Metadata.GetMetadata<ProxyActionMetadata>()?.Action)))
            .ToList();

    /// <summary>The path of <paramref name="pattern"/> with each parameter filled in (relative, for a client with a base address).</summary>
    public static string Path(RoutePattern pattern, Func<string, string> value)
    {
        var path = new StringBuilder();
        foreach (var segment in pattern.PathSegments)
        {
            path.Append(path.Length > 0 ? "/" : string.Empty);
            foreach (var part in segment.Parts)
            {
                path.Append(part switch
                {
                    RoutePatternLiteralPart literal => literal.Content,
                    RoutePatternParameterPart parameter => Uri.EscapeDataString(value(parameter.Name)),
                    RoutePatternSeparatorPart separator => separator.Content,
                    _ => string.Empty,
                });
            }
        }

        return path.ToString();
    }

    public static string Resource(RouteEndpoint endpoint, string method) => $"{method} {endpoint.RoutePattern.RawText}";
}
