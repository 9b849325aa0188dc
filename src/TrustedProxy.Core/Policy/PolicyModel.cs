namespace TrustedProxy.Policy;

/// <summary>What a request wants to do. Every HTTP endpoint declares exactly one.</summary>
public enum ProxyAction
{
    /// <summary>Store a new record.</summary>
    Upload,

    /// <summary>List or search records.</summary>
    Search,

    /// <summary>Read a record's contents or metadata.</summary>
    Retrieve,

    /// <summary>Remove a record from the index and the cloud.</summary>
    Delete,

    /// <summary>Manage the certificate authority: issue, list, revoke.</summary>
    Administer,

    /// <summary>Read decisions, policies and other audit data.</summary>
    Audit,

    /// <summary>Learn how to talk to the proxy: health, the API description, the CA certificate and CRL.</summary>
    Discover,

    /// <summary>Take k of a set of N records by oblivious transfer, the proxy not learning which.</summary>
    RetrieveOblivious,

    /// <summary>Run maintenance on the stored data: start and follow the object-format migration.</summary>
    Maintain,

    /// <summary>Send records, encrypted to a named recipient's certificate, as a signed bundle (docs/export.md).</summary>
    Export,
}

/// <summary>Action names as policy files, the what-if API and the command line spell them.</summary>
public static class ProxyActions
{
    private static readonly Dictionary<string, ProxyAction> ByName = new(StringComparer.Ordinal)
    {
        ["upload"] = ProxyAction.Upload,
        ["search"] = ProxyAction.Search,
        ["retrieve"] = ProxyAction.Retrieve,
        ["retrieve-oblivious"] = ProxyAction.RetrieveOblivious,
        ["delete"] = ProxyAction.Delete,
        ["administer"] = ProxyAction.Administer,
        ["audit"] = ProxyAction.Audit,
        ["discover"] = ProxyAction.Discover,
        ["maintain"] = ProxyAction.Maintain,
        ["export"] = ProxyAction.Export,
    };

    public static IReadOnlyList<string> Names { get; } = [.. ByName.Keys];

    public static string ToName(ProxyAction action) =>
        ByName.FirstOrDefault(p => p.Value == action).Key ?? throw new ArgumentOutOfRangeException(nameof(action));

    public static bool TryParse(string? name, out ProxyAction action) => ByName.TryGetValue(name?.Trim() ?? string.Empty, out action);

    /// <summary>The actions that read records: consent and record conditions are about these.</summary>
    public static bool ReadsRecords(ProxyAction action) => action is ProxyAction.Search or ProxyAction.Retrieve or ProxyAction.RetrieveOblivious or ProxyAction.Export;
}

/// <summary>Why records are wanted (the HTTP header <c>Purpose-Of-Use</c>).</summary>
public enum PurposeOfUse
{
    Treatment,
    Research,
    Emergency,
}

/// <summary>Purpose names as headers, policy files and the command line spell them.</summary>
public static class PurposesOfUse
{
    public static IReadOnlyList<string> Names { get; } = ["treatment", "research", "emergency"];

    public static string ToName(PurposeOfUse purpose) => Names[(int)purpose];

    /// <summary>Only the three names (any case); numbers and other spellings are refused.</summary>
    public static bool TryParse(string? name, out PurposeOfUse purpose)
    {
        var index = Names.ToList().IndexOf(name?.Trim().ToLowerInvariant() ?? string.Empty);
        purpose = index < 0 ? default : (PurposeOfUse)index;
        return index >= 0;
    }
}

/// <summary>The circumstances of a request: its declared purpose, the view the caller asked for, and a break-glass justification.</summary>
/// <param name="Purpose">Declared purpose of use; treatment when not declared.</param>
/// <param name="DeidentifiedViewRequested">The caller asked for the de-identified view (<c>view=deidentified</c>).</param>
/// <param name="RequestedProfile">The de-identification profile the caller named, if any.</param>
/// <param name="BreakGlassJustification">Why the caller invokes an emergency rule (header <c>Break-Glass-Justification</c>); break-glass rules apply only with one.</param>
public sealed record PolicyContext(PurposeOfUse Purpose = PurposeOfUse.Treatment, bool DeidentifiedViewRequested = false, string? RequestedProfile = null, string? BreakGlassJustification = null)
{
    public static PolicyContext Default { get; } = new();
}

/// <summary>
/// What the decision point may know about a record: its handle, who uploaded it, the patient's
/// pseudonym (never the identity), its modality and study date. Consent is not an attribute of the
/// record: it is in the policy files, keyed by the pseudonym.
/// </summary>
public sealed record RecordAttributes(string Handle, string OriginOrganisation, string? PatientPseudonym = null, string? Modality = null, DateOnly? StudyDate = null);

/// <summary>A question to the policy decision point.</summary>
/// <param name="Subject">The caller, from their certificate.</param>
/// <param name="Action">What they want to do.</param>
/// <param name="Resource">The route being called, for the explanation and the log.</param>
/// <param name="Time">When.</param>
/// <param name="Context">Purpose, requested view, justification.</param>
/// <param name="Record">The record the action is about; null for the request-level decision taken before any record is known.</param>
public sealed record PolicyRequest(FederationIdentity Subject, ProxyAction Action, string Resource, DateTimeOffset Time, PolicyContext? Context = null, RecordAttributes? Record = null)
{
    public PolicyContext Context { get; init; } = Context ?? PolicyContext.Default;
}

/// <summary>Which form of a record a permitted request receives.</summary>
public enum RecordView
{
    /// <summary>The file as uploaded, bit-exact.</summary>
    Original,

    /// <summary>The PS3.15 de-identified view under a named profile.</summary>
    Deidentified,
}

/// <summary>What the enforcement point must do when it carries out a permit.</summary>
/// <param name="View">The view of records to give.</param>
/// <param name="DeidentificationProfile">For the de-identified view: the profile, or null for the configured default.</param>
/// <param name="Fingerprint">Every copy handed out carries a fingerprint naming the caller and the request; false: unmarked originals may go out.</param>
/// <param name="MinObliviousSet">The fewest records an oblivious-transfer offer may hold (N), so that the choice hides among enough others.</param>
public sealed record PolicyObligations(RecordView View = RecordView.Original, string? DeidentificationProfile = null, bool Fingerprint = false, int MinObliviousSet = 1)
{
    public static PolicyObligations None { get; } = new();
}

/// <summary>The answer: permit or deny, why, and what the enforcement point must do with a permit.</summary>
/// <param name="Permitted">Whether the request may proceed.</param>
/// <param name="Rule">The rule that decided (<c>default-deny</c> when none did).</param>
/// <param name="Reason">A sentence a compliance officer can read.</param>
/// <param name="Obligations">What the enforcement point must do with a permit.</param>
public sealed record PolicyDecision(bool Permitted, string Rule, string Reason, PolicyObligations? Obligations = null)
{
    /// <summary>The rule id of a denial no rule of the policy made: nothing permitted the request.</summary>
    public const string DefaultDeny = "default-deny";

    public PolicyObligations Obligations { get; init; } = Obligations ?? PolicyObligations.None;

    /// <summary>Which rules matched and how they combined.</summary>
    public PolicyExplanation Explanation { get; init; } = PolicyExplanation.None;

    /// <summary>A break-glass rule permitted this (the caller gave a justification); the enforcement point raises an alert.</summary>
    public bool BreakGlass { get; init; }

    /// <summary>The hash of the policy set that decided.</summary>
    public string PolicyVersion { get; init; } = string.Empty;

    /// <summary>
    /// Request level only: the permit rests on rules about records, so each record is decided when it is touched.
    /// </summary>
    public bool PerRecord { get; init; }

    /// <summary>
    /// Request level only: the organisations whose records any rule could permit (a superset), so that
    /// a search need not examine records no rule can reach; null when any origin could be permitted.
    /// </summary>
    public IReadOnlySet<string>? RecordOrigins { get; init; }

    public static PolicyDecision Deny(string rule, string reason) => new(false, rule, reason)
    {
        Explanation = new PolicyExplanation("deny", rule, "request", string.Empty, [], null, [reason]),
    };
}

/// <summary>The policy decision point: decides every request the enforcement point sees.</summary>
public interface IPolicyDecisionPoint
{
    /// <summary>Decides; must deny anything it has no rule for.</summary>
    PolicyDecision Decide(PolicyRequest request);
}

/// <summary>A record-level decision denied an action on a record (an upload the policy refuses once its header is read).</summary>
public sealed class RecordWithheldException(PolicyDecision decision) : Exception(decision.Reason)
{
    public PolicyDecision Decision { get; } = decision;
}
