using TrustedProxy.Audit;
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
/// traced copy leads back to this decision.
/// </summary>
internal sealed partial class PolicyEnforcementMiddleware(
    RequestDelegate next,
    IPolicyDecisionPoint decisionPoint,
    DecisionLog decisions,
    AuditLog audit,
    PublishedRevocationList revocations,
    RecordWatermarks watermarks,
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
            await Problem.Write(context, ProblemTypes.CertificateRevoked, $"certificate {identity.CertificateSerial} is revoked or its status cannot be established");
            return;
        }

        if (!RequestContext.TryRead(context.Request, out var requestContext, out var contextError))
        {
            await Problem.Write(context, ProblemTypes.InvalidRequestContext, contextError!);
            return;
        }

        var resource = $"{context.Request.Method} {route.RoutePattern.RawText}";
        var request = new PolicyRequest(identity, endpoint.Metadata.GetMetadata<ProxyActionMetadata>()?.Action ?? default, resource, time.GetUtcNow(), requestContext);
        var decision = endpoint.Metadata.GetMetadata<ProxyActionMetadata>() is null
            ? PolicyDecision.Deny("undeclared-action", "the endpoint declares no action, so no rule can permit it")
            : decisionPoint.Decide(request);

        LogDecision(logger, decision.Permitted ? "permit" : "deny", identity.Organisation, ProxyRoles.ToName(identity.Role), request.Action, resource, decision.Rule, decision.Reason);
        var requestId = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

        // The tamper-evident log first: if it cannot be written, the request fails (503) and nothing else happens.
        await audit.AppendAsync(AuditEvents.Decision(request, decision), new AuditContext(AuditActor.Member(identity), requestId));
        await decisions.AppendAsync(request, decision, new RequestMark(requestId, watermarks.RequestTag(requestId)));

        context.Response.Headers[ProxyRequestFeature.RequestIdHeader] = requestId;
        if (!decision.Permitted)
        {
            await Problem.Write(context, ProblemTypes.Forbidden, decision.Reason, new Dictionary<string, object?> { ["rule"] = decision.Rule });
            return;
        }

        context.Features.Set(new ProxyRequestFeature(identity, decision, requestId, request.Time));
        await next(context);
    }

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Policy {Result}: {Organisation} ({Role}) {Action} {Resource} by rule {Rule}: {Reason}")]
    private static partial void LogDecision(ILogger logger, string result, string organisation, string role, ProxyAction action, string resource, string rule, string reason);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Warning, Message = "Request on an open connection refused: certificate {Serial} is revoked")]
    private static partial void LogRevokedOnOpenConnection(ILogger logger, string serial);
}
