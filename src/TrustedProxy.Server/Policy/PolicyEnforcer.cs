using System.Diagnostics.Metrics;
using TrustedProxy.Audit;
using TrustedProxy.Policy;
using TrustedProxy.Server.Hosting;

namespace TrustedProxy.Server.Policy;

/// <summary>
/// What the enforcement point does with every decision, request-level or record-level: asks the
/// decision point, counts it, raises the break-glass alert (a Warning with event id 1203 and the
/// metric <c>trustedproxy.policy.break_glass</c>; the justification goes to the decision log only,
/// never to a log line), and records it before anything is handed out: first in the tamper-evident
/// audit log (if that cannot be written the request fails with 503 and nothing else happens), then
/// in the searchable decision log.
/// </summary>
internal sealed partial class PolicyEnforcer
{
    private readonly IPolicyDecisionPoint _decisionPoint;
    private readonly DecisionLog _log;
    private readonly AuditLog _audit;
    private readonly ILogger _logger;
    private readonly Counter<long> _decisions;
    private readonly Counter<long> _breakGlass;

    public PolicyEnforcer(IPolicyDecisionPoint decisionPoint, DecisionLog log, AuditLog audit, IMeterFactory meters, ILogger<PolicyEnforcer> logger)
    {
        _decisionPoint = decisionPoint;
        _log = log;
        _audit = audit;
        _logger = logger;
        var meter = meters.Create("TrustedProxy.Policy");
        _decisions = meter.CreateCounter<long>("trustedproxy.policy.decisions", "{decision}", "Policy decisions (tags result: permit or deny; level: request or record)");
        _breakGlass = meter.CreateCounter<long>("trustedproxy.policy.break_glass", "{decision}", "Permits by a break-glass rule (tag action)");
    }

    public PolicyDecision Decide(PolicyRequest request)
    {
        var decision = _decisionPoint.Decide(request);
        _decisions.Add(1, new KeyValuePair<string, object?>("result", decision.Permitted ? "permit" : "deny"), new KeyValuePair<string, object?>("level", request.Record is null ? "request" : "record"));
        return decision;
    }

    /// <summary>Logs and records decisions in one transaction; a failure throws, so nothing is handed out unrecorded.</summary>
    public async Task RecordAsync(IReadOnlyCollection<(PolicyRequest Request, PolicyDecision Decision)> decisions, RequestMark mark)
    {
        foreach (var (request, decision) in decisions)
        {
            var role = ProxyRoles.ToName(request.Subject.Role);
            if (request.Record is { } record)
            {
                if (!decision.Permitted)
                {
                    LogRecordDenied(_logger, request.Subject.Organisation, role, request.Action, record.Handle, decision.Rule, mark.RequestId);
                }
            }
            else
            {
                LogDecision(_logger, decision.Permitted ? "permit" : "deny", request.Subject.Organisation, role, request.Action, request.Resource, decision.Rule, LogText.Escape(decision.Reason));
            }

            if (decision is { Permitted: true, BreakGlass: true })
            {
                _breakGlass.Add(1, new KeyValuePair<string, object?>("action", request.Action.ToString()));
                LogBreakGlass(_logger, request.Subject.Organisation, role, request.Action, request.Resource, request.Record?.Handle ?? "-", decision.Rule, mark.RequestId);
            }
        }

        // Concurrent appends share one fsync; the entries of one request need no order among themselves.
        await Task.WhenAll(decisions.Select(d => _audit.AppendAsync(AuditEvents.Decision(d.Request, d.Decision), new AuditContext(AuditActor.Member(d.Request.Subject), mark.RequestId))));
        await _log.AppendAsync(decisions, mark);
    }

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Policy {Result}: {Organisation} ({Role}) {Action} {Resource} by rule {Rule}: {Reason}")]
    private static partial void LogDecision(ILogger logger, string result, string organisation, string role, ProxyAction action, string resource, string rule, string reason);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Warning, Message = "BREAK-GLASS: {Organisation} ({Role}) {Action} {Resource} record {Record} permitted by rule {Rule} under request {RequestId}; the justification is in the decision log")]
    private static partial void LogBreakGlass(ILogger logger, string organisation, string role, ProxyAction action, string resource, string record, string rule, string requestId);

    [LoggerMessage(EventId = 1204, Level = LogLevel.Information, Message = "Policy deny on record {Record}: {Organisation} ({Role}) {Action} by rule {Rule} under request {RequestId}")]
    private static partial void LogRecordDenied(ILogger logger, string organisation, string role, ProxyAction action, string record, string rule, string requestId);
}
