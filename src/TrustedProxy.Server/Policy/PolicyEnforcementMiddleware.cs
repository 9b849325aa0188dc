using Microsoft.Extensions.Options;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Policy;
using TrustedProxy.Server.Problems;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Server.Policy;

/// <summary>
/// The policy enforcement point: the one place every request passes after routing and before
/// any endpoint runs. It takes the caller's identity from the client certificate, checks the CRL
/// again (connections outlive revocations), asks the decision point about the endpoint's declared
/// action, logs and records the decision, and lets only a permit through. If the decision cannot
/// be recorded, the request fails: no unrecorded access. Each request gets a random identifier,
/// recorded with its decision together with the tag fingerprints of its copies carry, so that a
/// traced copy leads back to this decision. The endpoint then asks again for every record it
/// touches (<see cref="ProxyRequestFeature.AuthorizeAsync(IReadOnlyList{TrustedProxy.Records.RecordEntry}, CancellationToken)"/>).
/// </summary>
internal sealed partial class PolicyEnforcementMiddleware(
    RequestDelegate next,
    PolicyEnforcer enforcer,
    PublishedRevocationList revocations,
    RecordWatermarks watermarks,
    IOptions<PolicyOptions> options,
    TimeProvider time,
    ILogger<PolicyEnforcementMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var endpoint = context.GetEndpoint();

        // No endpoint: routing answers 404. A non-route endpoint is the framework's own 405
        // rejection; neither touches data.
        if (endpoint is not RouteEndpoint route)
        {
            await next(context);
            return;
        }

        var certificate = context.Connection.ClientCertificate;
        if (certificate is null || !FederationIdentityExtension.TryRead(certificate, out var identity) || identity is null)
        {
            await Problem.Write(context, ProblemTypes.Unauthenticated, "a client certificate with a federation identity is required");
            return;
        }

        if (revocations.Check(identity.CertificateSerial) != RevocationStatus.Good)
        {
            LogRevokedOnOpenConnection(logger, identity.CertificateSerial);
            await Problem.Write(context, ProblemTypes.CertificateRevoked, revocations.Problem() is { } problem
                ? $"the status of certificate {identity.CertificateSerial} cannot be established: {problem}"
                : $"certificate {identity.CertificateSerial} is revoked");
            return;
        }

        if (!RequestContext.TryRead(context.Request, options.Value.MaxJustificationLength, out var requestContext, out var contextError))
        {
            await Problem.Write(context, ProblemTypes.InvalidRequestContext, contextError!);
            return;
        }

        var resource = $"{context.Request.Method} {route.RoutePattern.RawText}";
        var declared = endpoint.Metadata.GetMetadata<ProxyActionMetadata>();
        var request = new PolicyRequest(identity, declared?.Action ?? default, resource, time.GetUtcNow(), requestContext);
        var decision = declared is null
            ? PolicyDecision.Deny("undeclared-action", "the endpoint declares no action, so no rule can permit it")
            : enforcer.Decide(request);

        var requestId = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var mark = new RequestMark(requestId, watermarks.RequestTag(requestId));
        await enforcer.RecordAsync([(request, decision)], mark);

        context.Response.Headers[ProxyRequestFeature.RequestIdHeader] = requestId;
        if (!decision.Permitted)
        {
            await Problem.Write(context, ProblemTypes.Forbidden, decision.Reason, ProxyRequestFeature.RuleExtension(decision));
            return;
        }

        context.Features.Set(new ProxyRequestFeature(request, decision, mark, enforcer));
        await next(context);
    }

    [LoggerMessage(EventId = 1202, Level = LogLevel.Warning, Message = "Request on an open connection refused: certificate {Serial} is revoked")]
    private static partial void LogRevokedOnOpenConnection(ILogger logger, string serial);
}
