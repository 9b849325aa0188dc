using System.Globalization;
using System.Text;

namespace TrustedProxy.Policy;

/// <summary>
/// Decides one request against one policy set (docs/policy.md, "Combining"):
/// <list type="number">
/// <item>The rules that can match the action and role, and the consent entries about the record's patient, are matched.
/// A condition on the record is unknown when the record is not known yet (the request-level decision) or lacks the attribute.</item>
/// <item>A deny applies when it matches, or when a record attribute it names is unknown (fail safe); before a record is known it waits for the record.
/// A permit applies only when it matches; before a record is known, one about records makes the request possible, decided record by record.
/// A break-glass permit applies only with a justification.</item>
/// <item>A deny is overridden only by an applying permit that names it in <c>overrides</c> (or, for consent, says <c>overridesConsent</c>).
/// Any deny left decides: deny overrides permit. Otherwise an applying permit decides; otherwise nothing permits (<c>default-deny</c>).</item>
/// <item>The obligations of a permit are the strictest of every applying permit and oblige rule: de-identified over original, fingerprint
/// if any says so, the largest oblivious set. The caller may ask for the de-identified view; never for less than the policy says.</item>
/// </list>
/// Pure: no clock, no I/O; the same set and request give the same decision.
/// </summary>
internal static class PolicyEvaluator
{
    public static PolicyDecision Evaluate(PolicySet set, PolicyRequest request)
    {
        var atRecord = request.Record is not null;
        var justified = !string.IsNullOrWhiteSpace(request.Context.BreakGlassJustification);
        var permits = new List<PolicyRule>();
        var possible = new List<PolicyRule>();
        var denies = new List<PolicyRule>();
        var contributors = new List<PolicyRule>();
        var matched = new List<(PolicyRule Rule, string Status, string? Detail)>();
        var notes = new List<string>();

        void Consider(PolicyRule rule)
        {
            var (match, unknown) = rule.Evaluate(request);
            if (match == Match.No)
            {
                return;
            }

            switch (rule.Effect)
            {
                case RuleEffect.Permit when rule.BreakGlass && !justified:
                    notes.Add($"break-glass rule {rule.Id} would apply with a Break-Glass-Justification");
                    break;
                case RuleEffect.Permit when match == Match.Yes:
                    permits.Add(rule);
                    contributors.Add(rule);
                    matched.Add((rule, "applied", null));
                    break;
                case RuleEffect.Permit when !atRecord:
                    possible.Add(rule);
                    matched.Add((rule, "per-record", unknown));
                    break;
                case RuleEffect.Permit:
                    matched.Add((rule, "not-applied", unknown));
                    break;
                case RuleEffect.Deny or RuleEffect.Oblige when match == Match.Unknown && !atRecord:
                    matched.Add((rule, "per-record", unknown));
                    break;
                default:
                    (rule.Effect == RuleEffect.Deny ? denies : contributors).Add(rule);
                    matched.Add((rule, match == Match.Yes ? "applied" : "assumed", unknown));
                    break;
            }
        }

        // The two candidate lists, merged back into policy order.
        var (any, named) = set.Candidates(request.Action, request.Subject.Role, request.Subject.Organisation);
        for (int i = 0, j = 0; i < any.Length || j < named.Length;)
        {
            Consider(j >= named.Length || (i < any.Length && any[i].Order < named[j].Order) ? any[i++] : named[j++]);
        }

        foreach (var rule in set.ConsentFor(request.Record?.PatientPseudonym))
        {
            Consider(rule);
        }

        var overriddenBy = new Dictionary<PolicyRule, PolicyRule>();
        foreach (var deny in denies)
        {
            if (permits.FirstOrDefault(p => p.Overrides.Contains(deny.Id) || (deny.Kind == RuleKind.Consent && p.OverridesConsent)) is { } by)
            {
                overriddenBy[deny] = by;
            }
        }

        var level = atRecord ? "record" : "request";
        var explained = matched.Select(m => new MatchedRule(
            m.Rule.Id, m.Rule.KindName, m.Rule.EffectName, m.Rule.Source,
            overriddenBy.TryGetValue(m.Rule, out var by) ? "overridden" : m.Status,
            overriddenBy.TryGetValue(m.Rule, out by) ? $"overridden by {by.Id}" : m.Detail)).ToList();

        if (denies.FirstOrDefault(d => !overriddenBy.ContainsKey(d)) is { } decisive)
        {
            var reason = $"denied by {decisive.Id}: {Describe(decisive, request)}";
            return new PolicyDecision(false, decisive.Id, reason)
            {
                Explanation = new PolicyExplanation("deny", decisive.Id, level, set.Version, explained, null, notes),
                PolicyVersion = set.Version,
            };
        }

        if (permits.Count == 0 && possible.Count == 0)
        {
            var reason = $"denied by {PolicyDecision.DefaultDeny}: no rule permits role '{Name(request.Subject.Role)}' of {request.Subject.Organisation} the action '{Name(request.Action)}'" +
                (atRecord ? " on this record" : string.Empty) + $" for {PurposesOfUse.ToName(request.Context.Purpose)}";
            return new PolicyDecision(false, PolicyDecision.DefaultDeny, reason)
            {
                Explanation = new PolicyExplanation("deny", PolicyDecision.DefaultDeny, level, set.Version, explained, null, [.. notes, "nothing permits it, so it is denied (deny by default)"]),
                PolicyVersion = set.Version,
            };
        }

        var deciding = overriddenBy.Values.FirstOrDefault() ?? permits.FirstOrDefault() ?? possible[0];
        var (obligations, because) = Combine(contributors, request.Context);
        var breakGlass = permits.Any(p => p.BreakGlass);
        var text = new StringBuilder($"permitted by {deciding.Id}");
        if (permits.Count == 0)
        {
            text.Append(" for the records it covers; each record is decided when it is touched");
        }

        if (overriddenBy.Count > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $", overriding {string.Join(", ", overriddenBy.Keys.Select(d => d.Id))}");
        }

        if (breakGlass)
        {
            text.Append(" (break-glass: justification recorded)");
        }

        text.Append(Summary(obligations, because));
        return new PolicyDecision(true, deciding.Id, text.ToString(), obligations)
        {
            Explanation = new PolicyExplanation("permit", deciding.Id, level, set.Version, explained, because, notes),
            PolicyVersion = set.Version,
            BreakGlass = breakGlass,
            PerRecord = permits.Count == 0,
            RecordOrigins = atRecord ? null : Origins(permits.Concat(possible), request.Subject.Organisation),
        };
    }

    private static (PolicyObligations Obligations, ExplainedObligations Because) Combine(IEnumerable<PolicyRule> rules, PolicyContext context)
    {
        string? viewBy = null, profileBy = null, fingerprintBy = null, minSetBy = null;
        string? profile = null;
        var minSet = 1;
        foreach (var rule in rules)
        {
            if (rule.Obligations is not { } o)
            {
                continue;
            }

            if (o.View == RecordView.Deidentified && viewBy is null)
            {
                viewBy = rule.Id;
            }

            if (o.Profile is not null && profile is null)
            {
                (profile, profileBy) = (o.Profile, rule.Id);
            }

            if (o.Fingerprint == true && fingerprintBy is null)
            {
                fingerprintBy = rule.Id;
            }

            if (o.MinObliviousSet is { } n && n > minSet)
            {
                (minSet, minSetBy) = (n, rule.Id);
            }
        }

        if (viewBy is null && context.DeidentifiedViewRequested)
        {
            viewBy = "request";
        }

        if (viewBy is not null && profile is null && context.RequestedProfile is not null)
        {
            (profile, profileBy) = (context.RequestedProfile, "request");
        }

        var view = viewBy is null ? RecordView.Original : RecordView.Deidentified;
        var obligations = new PolicyObligations(view, view == RecordView.Deidentified ? profile : null, fingerprintBy is not null, minSet);
        var because = new ExplainedObligations(
            view == RecordView.Deidentified ? "deidentified" : "original", obligations.DeidentificationProfile, obligations.Fingerprint, minSet,
            viewBy, obligations.DeidentificationProfile is null ? null : profileBy, fingerprintBy, minSetBy);
        return (obligations, because);
    }

    private static string Summary(PolicyObligations obligations, ExplainedObligations because)
    {
        var parts = new List<string>();
        if (obligations.View == RecordView.Deidentified)
        {
            var profile = obligations.DeidentificationProfile is { } p ? $", profile {p}" : string.Empty;
            parts.Add(because.ViewBy == "request" ? $"de-identified view (requested{profile})" : $"de-identified view (rule {because.ViewBy}{profile})");
        }

        if (obligations.Fingerprint)
        {
            parts.Add($"fingerprinted copies (rule {because.FingerprintBy})");
        }

        if (obligations.MinObliviousSet > 1)
        {
            parts.Add($"oblivious sets of at least {obligations.MinObliviousSet} (rule {because.MinObliviousSetBy})");
        }

        return parts.Count == 0 ? string.Empty : "; " + string.Join("; ", parts);
    }

    /// <summary>The organisations whose records some permit can reach; null when a permit reaches any origin.</summary>
    private static HashSet<string>? Origins(IEnumerable<PolicyRule> permits, string own)
    {
        var origins = new HashSet<string>(StringComparer.Ordinal);
        foreach (var permit in permits)
        {
            switch (permit.When.Record?.Origin)
            {
                case { Kind: OriginKind.Own }:
                    origins.Add(own);
                    break;
                case { Kind: OriginKind.Listed } listed:
                    origins.UnionWith(listed.Names);
                    break;
                default:
                    return null;
            }
        }

        return origins;
    }

    private static string Describe(PolicyRule rule, PolicyRequest request)
    {
        if (rule.Description is { } description)
        {
            return description;
        }

        return rule.Kind == RuleKind.Consent
            ? "the patient's consent withholds these records" +
              (rule.When.Organisations is { } orgs ? $" from {string.Join(", ", orgs)}" : string.Empty) +
              (rule.When.Purposes is { } purposes ? $" for {string.Join(", ", purposes.Select(PurposesOfUse.ToName))}" : string.Empty)
            : $"an explicit deny for {Name(request.Subject.Role)} {Name(request.Action)}";
    }

    private static string Name(ProxyAction action) => Enum.IsDefined(action) ? ProxyActions.ToName(action) : action.ToString();

    private static string Name(ProxyRole role) => Enum.IsDefined(role) ? ProxyRoles.ToName(role) : role.ToString();
}
