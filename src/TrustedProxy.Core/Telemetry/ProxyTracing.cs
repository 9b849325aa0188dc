using System.Diagnostics;

namespace TrustedProxy.Telemetry;

/// <summary>
/// The proxy's trace spans (<see cref="SourceName"/>): an upload through its record-level decision,
/// DICOM read, seal and encryption; a retrieval through the record's opening and where its bytes came
/// from; each policy decision. Spans stay inside the proxy and its own collector: the cloud clients
/// propagate no context (their handlers have no propagator, docs/privacy.md "On the wire"). Their
/// names and tags never carry an identifier: no handle, UID, name or path, only kinds, outcomes and
/// sizes (docs/operations.md, "Telemetry").
/// </summary>
internal static class ProxyTracing
{
    public const string SourceName = "TrustedProxy";

    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>Tag: what became of the operation (stored, duplicate, refused, …).</summary>
    public const string Outcome = "trustedproxy.outcome";

    /// <summary>Tag: a size in bytes.</summary>
    public const string Bytes = "trustedproxy.bytes";

    /// <summary>Tag: where a record's bytes came from (cache, relocation queue, cloud).</summary>
    public const string RecordSource = "trustedproxy.record.source";

    /// <summary>Tag: the view a retrieval gets (original, de-identified, …).</summary>
    public const string View = "trustedproxy.view";

    /// <summary>Tag: a policy decision's effect (permit or deny) and the action asked.</summary>
    public const string Permitted = "trustedproxy.policy.permitted";

    public const string Action = "trustedproxy.policy.action";

    /// <summary>An internal span under the current one (null when nobody listens).</summary>
    public static Activity? Start(string name) => Source.StartActivity(name, ActivityKind.Internal);
}
