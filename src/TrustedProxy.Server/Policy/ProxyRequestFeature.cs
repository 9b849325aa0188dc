using TrustedProxy.Policy;

namespace TrustedProxy.Server.Policy;

/// <summary>
/// Per-request state, set by the enforcement point and read by the endpoints: who is calling and
/// what the policy decided (including the scope of records they may see).
/// </summary>
internal sealed class ProxyRequestFeature(FederationIdentity identity, PolicyDecision decision)
{
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
