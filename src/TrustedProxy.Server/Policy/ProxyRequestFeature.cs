using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Server.Policy;

/// <summary>
/// Per-request state, set by the enforcement point and read by the endpoints: who is calling, the
/// request-level decision, the request's identifier (recorded with the decision; fingerprints of
/// copies name it), and the one way to reach a record: <see cref="AuthorizeAsync(IReadOnlyList{RecordEntry}, CancellationToken)"/>,
/// a record-level decision for each record touched, whose obligations (view, fingerprint) are the
/// ones to carry out for that record.
/// </summary>
internal sealed class ProxyRequestFeature(PolicyRequest request, PolicyDecision decision, RequestMark mark, PolicyEnforcer enforcer)
{
    /// <summary>The response header that names the request's identifier.</summary>
    public const string RequestIdHeader = "Request-Id";

    public PolicyRequest Request { get; } = request;

    public string RequestId => mark.RequestId;

    public RequestMark Mark => mark;

    public DateTimeOffset Time => Request.Time;

    /// <summary>Who copies handed out under this request are fingerprinted for: the caller's organisation, this request, its time.</summary>
    public EgressMark Egress => new(Identity.Organisation, RequestId, Time);

    public FederationIdentity Identity => Request.Subject;

    /// <summary>The request-level decision: a permit, taken before any record was known.</summary>
    public PolicyDecision Decision { get; } = decision;

    /// <summary>The problem extension that names the deciding rule.</summary>
    public static Dictionary<string, object?> RuleExtension(PolicyDecision decision) => new() { ["rule"] = decision.Rule };

    /// <summary>Decides about one record; see <see cref="AuthorizeAsync(IReadOnlyList{RecordEntry}, CancellationToken)"/>.</summary>
    public async Task<PolicyDecision> AuthorizeAsync(RecordEntry entry, CancellationToken cancellationToken) =>
        (await AuthorizeAsync([entry], cancellationToken))[0];

    /// <summary>
    /// Decides about each record, in order, with its attributes; records every denial (and every
    /// break-glass permit, with its alert) in the decision log in one transaction before returning.
    /// A record whose decision gives a stricter view than the request-level one (a rule about the
    /// record asks for the de-identified view of a request made in the original view) is withheld:
    /// the request found it by identifiers of the original view.
    /// </summary>
    public async Task<IReadOnlyList<PolicyDecision>> AuthorizeAsync(IReadOnlyList<RecordEntry> entries, CancellationToken cancellationToken)
    {
        var decisions = new List<PolicyDecision>(entries.Count);
        var toRecord = new List<(PolicyRequest, PolicyDecision)>();
        foreach (var entry in entries)
        {
            var question = Request with { Record = entry.Attributes };
            var answer = Escalation(enforcer.Decide(question));
            decisions.Add(answer);
            if (!answer.Permitted || answer.BreakGlass)
            {
                toRecord.Add((question, answer));
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        await enforcer.RecordAsync(toRecord, mark);
        return decisions;
    }

    /// <summary>For an upload: decides about the record being created, once its header is read; a denial throws <see cref="RecordWithheldException"/>.</summary>
    public async Task AuthorizeUploadAsync(RecordAttributes record, CancellationToken cancellationToken)
    {
        var question = Request with { Record = record };
        var answer = enforcer.Decide(question);
        if (!answer.Permitted || answer.BreakGlass)
        {
            await enforcer.RecordAsync([(question, answer)], mark);
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (!answer.Permitted)
        {
            throw new RecordWithheldException(answer);
        }
    }

    private PolicyDecision Escalation(PolicyDecision decision)
    {
        if (!decision.Permitted || !ProxyActions.ReadsRecords(Request.Action) ||
            decision.Obligations.View != RecordView.Deidentified || Decision.Obligations.View != RecordView.Original)
        {
            return decision;
        }

        var rule = decision.Explanation.Obligations?.ViewBy ?? decision.Rule;
        var reason = $"withheld: rule {rule} gives this record only the de-identified view, and the request was made in the original view; ask again with view=deidentified";
        return decision with
        {
            Permitted = false,
            Rule = rule,
            Reason = reason,
            BreakGlass = false,
            Explanation = decision.Explanation with { Result = "deny", Rule = rule, Notes = [.. decision.Explanation.Notes, reason] },
        };
    }
}

internal static class ProxyRequestFeatureExtensions
{
    /// <summary>The enforcement point's verdict for this request; endpoints only run after a permit, so it is always there.</summary>
    public static ProxyRequestFeature Proxy(this HttpContext context) =>
        context.Features.Get<ProxyRequestFeature>() ?? throw new InvalidOperationException("the policy enforcement point did not run for this endpoint");
}
