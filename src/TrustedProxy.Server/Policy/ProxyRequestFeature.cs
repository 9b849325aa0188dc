using TrustedProxy.Policy;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Server.Policy;

/// <summary>
/// Per-request state, set by the enforcement point and read by the endpoints: who is calling and
/// what the policy decided (including the scope of records they may see), and the request's
/// identifier (recorded with the decision; fingerprints of copies name it).
/// </summary>
internal sealed class ProxyRequestFeature(FederationIdentity identity, PolicyDecision decision, string requestId, DateTimeOffset time)
{
    /// <summary>The response header that names the request's identifier.</summary>
    public const string RequestIdHeader = "Request-Id";

    public string RequestId { get; } = requestId;

    public DateTimeOffset Time { get; } = time;

    /// <summary>Who copies handed out under this request are fingerprinted for: the caller's organisation, this request, its time.</summary>
    public EgressMark Egress => new(Identity.Organisation, RequestId, Time);

    public FederationIdentity Identity { get; } = identity;

    public PolicyDecision Decision { get; } = decision;

    /// <summary>Whether a record uploaded by <paramref name="originOrganisation"/> is within this request's scope.</summary>
    public bool MaySee(string originOrganisation) => Decision.Scope switch
    {
        RecordScope.All => true,
        RecordScope.OwnOrganisation => string.Equals(originOrganisation, Identity.Organisation, StringComparison.Ordinal),
        _ => false,
    };
}

internal static class ProxyRequestFeatureExtensions
{
    /// <summary>The enforcement point's verdict for this request; endpoints only run after a permit, so it is always there.</summary>
    public static ProxyRequestFeature Proxy(this HttpContext context) =>
        context.Features.Get<ProxyRequestFeature>() ?? throw new InvalidOperationException("the policy enforcement point did not run for this endpoint");
}
