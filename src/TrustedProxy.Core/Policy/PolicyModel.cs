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

    /// <summary>Read decisions and other audit data.</summary>
    Audit,

    /// <summary>Learn how to talk to the proxy: health, the API description, the CA certificate and CRL.</summary>
    Discover,

    /// <summary>Take k of a set of N records by oblivious transfer, the proxy not learning which.</summary>
    RetrieveOblivious,
}

/// <summary>Which records a permitted request may touch.</summary>
public enum RecordScope
{
    /// <summary>No records (the action is not about records, or the request is denied).</summary>
    None,

    /// <summary>Only records uploaded by the caller's own organisation.</summary>
    OwnOrganisation,

    /// <summary>Every record.</summary>
    All,
}

/// <summary>Why records are wanted (the HTTP header <c>Purpose-Of-Use</c>).</summary>
public enum PurposeOfUse
{
    Treatment,
    Research,
    Emergency,
}

/// <summary>The circumstances of a request: its declared purpose and the view the caller asked for.</summary>
/// <param name="Purpose">Declared purpose of use; treatment when not declared.</param>
/// <param name="DeidentifiedViewRequested">The caller asked for the de-identified view (<c>view=deidentified</c>).</param>
/// <param name="RequestedProfile">The de-identification profile the caller named, if any.</param>
public sealed record PolicyContext(PurposeOfUse Purpose = PurposeOfUse.Treatment, bool DeidentifiedViewRequested = false, string? RequestedProfile = null)
{
    public static PolicyContext Default { get; } = new();
}

/// <summary>A question to the policy decision point.</summary>
/// <param name="Subject">The caller, from their certificate.</param>
/// <param name="Action">What they want to do.</param>
/// <param name="Resource">The route being called, for the explanation and the log.</param>
/// <param name="Time">When.</param>
/// <param name="Context">Purpose and requested view.</param>
public sealed record PolicyRequest(FederationIdentity Subject, ProxyAction Action, string Resource, DateTimeOffset Time, PolicyContext? Context = null)
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
public sealed record PolicyObligations(RecordView View = RecordView.Original, string? DeidentificationProfile = null, bool Fingerprint = false)
{
    public static PolicyObligations None { get; } = new();
}

/// <summary>The answer: permit or deny, why, and what the enforcement point must do with a permit.</summary>
/// <param name="Permitted">Whether the request may proceed.</param>
/// <param name="Rule">The rule that decided.</param>
/// <param name="Reason">A sentence a compliance officer can read.</param>
/// <param name="Scope">Which records a permitted request may see.</param>
/// <param name="Obligations">What the enforcement point must do with a permit.</param>
public sealed record PolicyDecision(bool Permitted, string Rule, string Reason, RecordScope Scope, PolicyObligations? Obligations = null)
{
    public PolicyObligations Obligations { get; init; } = Obligations ?? PolicyObligations.None;

    public static PolicyDecision Deny(string rule, string reason) => new(false, rule, reason, RecordScope.None);
}

/// <summary>The policy decision point: decides every request the enforcement point sees.</summary>
public interface IPolicyDecisionPoint
{
    /// <summary>Decides; must deny anything it has no rule for.</summary>
    PolicyDecision Decide(PolicyRequest request);
}
