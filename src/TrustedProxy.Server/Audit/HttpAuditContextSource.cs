using TrustedProxy.Audit;
using TrustedProxy.Server.Policy;

namespace TrustedProxy.Server.Audit;

/// <summary>
/// Who the capabilities act for, as the enforcement point recorded it on the request's feature:
/// the member and the request's identifier; outside a request (start-up, background work), the proxy.
/// </summary>
internal sealed class HttpAuditContextSource(IHttpContextAccessor accessor) : IAuditContextSource
{
    public AuditContext Current => accessor.HttpContext?.Features.Get<ProxyRequestFeature>() is { } feature
        ? new AuditContext(AuditActor.Member(feature.Identity), feature.RequestId)
        : AuditContext.Proxy;
}
