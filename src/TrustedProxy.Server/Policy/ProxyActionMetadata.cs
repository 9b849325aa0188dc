using TrustedProxy.Policy;

namespace TrustedProxy.Server.Policy;

/// <summary>The one action an endpoint performs; the enforcement point denies endpoints without it.</summary>
internal sealed record ProxyActionMetadata(ProxyAction Action);

internal static class ProxyActionEndpointExtensions
{
    /// <summary>Declares what the endpoint does, so the enforcement point can ask the policy about it.</summary>
    public static TBuilder RequiresAction<TBuilder>(this TBuilder builder, ProxyAction action)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new ProxyActionMetadata(action));
}
