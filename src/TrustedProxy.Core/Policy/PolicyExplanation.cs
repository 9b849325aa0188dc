namespace TrustedProxy.Policy;

/// <summary>
/// Why a decision came out as it did, stored with every decision and returned by the what-if API:
/// the rules that matched (never the thousands that did not), what each contributed, and notes
/// (a break-glass rule that would apply with a justification, an attribute the record lacks).
/// </summary>
/// <param name="Result"><c>permit</c> or <c>deny</c>.</param>
/// <param name="Rule">The deciding rule.</param>
/// <param name="Level"><c>request</c> (before any record is known) or <c>record</c>.</param>
/// <param name="PolicyVersion">The hash of the policy set that decided.</param>
/// <param name="Matched">Every rule that matched, in policy order, with its part in the outcome.</param>
/// <param name="Obligations">For a permit: the obligations and which rule imposed each.</param>
/// <param name="Notes">Sentences for the reader.</param>
public sealed record PolicyExplanation(
    string Result,
    string Rule,
    string Level,
    string PolicyVersion,
    IReadOnlyList<MatchedRule> Matched,
    ExplainedObligations? Obligations,
    IReadOnlyList<string> Notes)
{
    public static PolicyExplanation None { get; } = new("deny", string.Empty, "request", string.Empty, [], null, []);
}

/// <summary>One rule that matched a request.</summary>
/// <param name="Rule">Its id.</param>
/// <param name="Kind"><c>rule</c> or <c>consent</c> (an entry of a <c>consent</c> list).</param>
/// <param name="Effect"><c>permit</c>, <c>deny</c> or <c>oblige</c>.</param>
/// <param name="Source">Where it is written: <c>file:line</c>.</param>
/// <param name="Status">
/// <c>applied</c>; <c>overridden</c> (a deny a permit overrides); <c>per-record</c> (it depends on
/// the record, decided when each is touched); <c>not-applied</c> (a permit whose record attribute is
/// unknown); <c>assumed</c> (a deny or obligation applied because a record attribute it names is unknown).
/// </param>
/// <param name="Detail">Why, in words, when the status needs one.</param>
public sealed record MatchedRule(string Rule, string Kind, string Effect, string Source, string Status, string? Detail = null);

/// <summary>The obligations of a permit and the rule (or <c>request</c>: the caller asked) behind each.</summary>
public sealed record ExplainedObligations(
    string View,
    string? Profile,
    bool Fingerprint,
    int MinObliviousSet,
    string? ViewBy,
    string? ProfileBy,
    string? FingerprintBy,
    string? MinObliviousSetBy);
