using TrustedProxy.Client;
using TrustedProxy.Policy;
using TrustedProxy.Server.Policy;
using TrustedProxy.Server.Problems;

namespace TrustedProxy.Server.Audit;

/// <summary>Audit data for compliance officers: every decision the enforcement point took.</summary>
internal static class AuditEndpoints
{
    public static IEndpointRouteBuilder MapAudit(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/audit/decisions", async (long? after, int? limit, DecisionLog log) =>
            limit is < 1 or > 10_000
                ? Problem.Result(ProblemTypes.InvalidQuery, "limit must be from 1 to 10000")
                : TypedResults.Ok(await log.ReadAsync(after ?? 0, limit ?? 1000)))
            .RequiresAction(ProxyAction.Audit)
            .WithTags("Audit")
            .WithSummary("Policy decisions in order, after a given id");

        app.MapGet("/api/v1/whoami", (HttpContext context) =>
            {
                var feature = context.Proxy();
                return TypedResults.Ok(new WhoAmI(feature.Identity.Organisation, ProxyRoles.ToName(feature.Identity.Role), feature.Identity.CertificateSerial));
            })
            .RequiresAction(ProxyAction.Discover)
            .WithTags("Identity")
            .WithSummary("The identity the proxy reads from your certificate");
        return app;
    }
}
