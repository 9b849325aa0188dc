namespace TrustedProxy.Client;

// The wire contracts of the proxy's API. The server answers with these very types, so the two ends cannot drift.

/// <summary>
/// The proxy's answer to an upload; <see cref="Warnings"/> says what it changed (a zeroed executable preamble).
/// <see cref="Seal"/> says how the record's integrity and origin are bound: <c>pixels</c> (a reversible
/// seal in the image itself, removed again at every retrieval), <c>detached</c> (an authenticated
/// signature stored with the record, for images whose pixels cannot carry one, e.g. compressed ones)
/// or <c>none</c> (larger than the proxy seals in memory); <see cref="SealDetail"/> says why.
/// <see cref="AlreadyStored"/>: the organisation had stored this very file already (same SOP Instance
/// UID, same bytes); the handle is that record's and nothing new was kept (answered 200, not 202).
/// <see cref="Replaced"/>: records of the same instance with other content that this upload replaced
/// (deleted), where the proxy is configured to replace rather than refuse.
/// </summary>
public sealed record UploadResult(string Handle, string? SopInstanceUid, long Length, string Location, IReadOnlyList<string>? Warnings = null, string? Seal = null, string? SealDetail = null, bool AlreadyStored = false, IReadOnlyList<string>? Replaced = null);

/// <summary>Search criteria; all optional, combined with AND.</summary>
public sealed record RecordSearch
{
    /// <summary>Ask for the de-identified view (as a research purpose does).</summary>
    public bool Deidentified { get; init; }

    /// <summary>Every record with this Patient ID, whoever issued it; each names its own patient (pseudonym).</summary>
    public string? PatientId { get; init; }

    /// <summary>With <see cref="PatientId"/>: only the patient of this Issuer of Patient ID (0010,0021).</summary>
    public string? IssuerOfPatientId { get; init; }

    public string? StudyInstanceUid { get; init; }

    public string? Modality { get; init; }

    public DateOnly? From { get; init; }

    public DateOnly? To { get; init; }

    public int? Limit { get; init; }

    public int? Offset { get; init; }
}

/// <summary>
/// A record as the proxy describes it; the patient only as a pseudonym. In the de-identified
/// view (<see cref="View"/> "deidentified:&lt;profile&gt;") UIDs, dates and the pseudonym are those
/// of the de-identified file, and length, origin and upload time are left out.
/// </summary>
public sealed record RecordSummary(
    string Handle,
    string? PatientPseudonym,
    string? StudyInstanceUid,
    string? SeriesInstanceUid,
    string? SopInstanceUid,
    string? SopClassUid,
    string? Modality,
    string? StudyDate,
    string TransferSyntaxUid,
    long? Length,
    string? OriginOrganisation,
    DateTimeOffset? CreatedAt,
    string View,
    string? Seal = null);

/// <summary>
/// An export to a recipient (POST /api/v1/exports; docs/export.md): the recipient's member
/// certificate (PEM), and either the records' handles or a study's Study Instance UID.
/// </summary>
public sealed record ExportRequest(string? Recipient, IReadOnlyList<string>? Records = null, string? Study = null);

/// <summary>A page of search results.</summary>
public sealed record RecordPage(IReadOnlyList<RecordSummary> Items, int Limit, int Offset);

/// <summary>Who the proxy thinks this client is.</summary>
public sealed record WhoAmI(string Organisation, string Role, string CertificateSerial);

/// <summary>
/// The object-format migration (<c>/api/v1/admin/object-format/migrate</c>, administrators): whether a
/// run is going on, how many records are still stored in the format of before index v7 (from the
/// index itself), and how many this run moved or left for the next run.
/// </summary>
public sealed record ObjectFormatMigrationProgress(bool Running, long LegacyRecords, long Migrated, long Failed, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, double RecordsPerHour);

/// <summary>A certificate issued through the admin API.</summary>
public sealed record IssuedCertificate(string Serial, string Organisation, string Role, DateTimeOffset NotAfter, string CertificatePem, string? Pkcs12Base64);

/// <summary>A certificate in the CA's registry.</summary>
public sealed record CertificateInfo(string Serial, string Subject, string Organisation, string Role, string Kind, DateTimeOffset NotBefore, DateTimeOffset NotAfter, DateTimeOffset IssuedAt, DateTimeOffset? RevokedAt, string? RevocationReason);

/// <summary>The proxy refused or failed a request; carries its RFC 9457 problem.</summary>
public sealed class TrustedProxyException(int status, string? problemType, string title, string detail) : Exception($"{title}: {detail}")
{
    /// <summary>HTTP status, or 0 for an error found by the client itself.</summary>
    public int Status { get; } = status;

    /// <summary>The problem type URI, e.g. urn:trustedproxy:problem:record-not-found.</summary>
    public string? ProblemType { get; } = problemType;

    public string Title { get; } = title;

    public string Detail { get; } = detail;
}

/// <summary>
/// What a submitted copy's watermark says (<c>POST /api/v1/trace</c>, compliance officers).
/// <see cref="Status"/> is <c>fingerprinted</c> (a copy handed out: to <see cref="ConsumerOrganisation"/>,
/// under <see cref="RequestId"/>, at <see cref="MarkedAt"/>), <c>sealed</c> (an unfingerprinted original
/// as stored: <see cref="RecordHandle"/>) or <c>no-valid-mark</c> (<see cref="Detail"/> says why).
/// </summary>
public sealed record TraceReport(
    string Status,
    string Detail,
    int? Frame = null,
    DateTimeOffset? MarkedAt = null,
    string? ConsumerOrganisation = null,
    string? CertificateSerial = null,
    string? RequestId = null,
    string? RequestResource = null,
    long? DecisionId = null,
    DateTimeOffset? DecidedAt = null,
    string? ConsumerTag = null,
    string? RequestTag = null,
    string? RecordHandle = null,
    string? OriginOrganisation = null);

/// <summary>Asks the proxy to offer <paramref name="Handles"/> for an oblivious transfer of <paramref name="Choices"/> of them.</summary>
public sealed record ObliviousOfferRequest(IReadOnlyList<string> Handles, int Choices);

/// <summary>One record of an offered set: its position in the transfer and what the consumer needs to choose it (the length is unknown for a de-identified view until it is made).</summary>
public sealed record ObliviousOfferRecord(int Index, string Handle, string? SopInstanceUid, long? Length);

/// <summary>The proxy's offer: the protocol's first message (base64) and the records in transfer order.</summary>
public sealed record ObliviousOffer(string SessionId, string Offer, int Choices, IReadOnlyList<ObliviousOfferRecord> Records);

/// <summary>
/// A request to evaluate without performing it (<c>POST /api/v1/policy/what-if</c>, compliance officers).
/// <see cref="Role"/>, <see cref="Action"/> and <see cref="Purpose"/> are spelled as in policy files
/// (e.g. <c>consumer</c>, <c>retrieve-oblivious</c>, <c>research</c>). Without <see cref="Record"/> the
/// request-level decision is evaluated; with it, the record-level decision.
/// </summary>
public sealed record WhatIfRequest(
    string Organisation,
    string Role,
    string Action,
    string? Purpose = null,
    DateTimeOffset? At = null,
    string? BreakGlassJustification = null,
    bool Deidentified = false,
    string? Profile = null,
    WhatIfRecord? Record = null);

/// <summary>The record of a what-if: a stored record by <see cref="Handle"/>, or attributes given here (then without a handle).</summary>
public sealed record WhatIfRecord(string? Handle = null, string? OriginOrganisation = null, string? PatientPseudonym = null, string? Modality = null, DateOnly? StudyDate = null);

/// <summary>What the enforcement point would have to do with a permit.</summary>
public sealed record WhatIfObligations(string View, string? Profile, bool Fingerprint, int MinObliviousSet);

/// <summary>One rule that matched: its id, kind (rule or consent), effect, where it is written and its part in the outcome.</summary>
public sealed record WhatIfMatchedRule(string Rule, string Kind, string Effect, string Source, string Status, string? Detail);

/// <summary>
/// The decision the proxy would take: permit or deny, the deciding rule, a sentence, the obligations,
/// every rule that matched and notes (e.g. a break-glass rule that needs a justification).
/// </summary>
public sealed record WhatIfResult(
    bool Permitted,
    string Rule,
    string Reason,
    string Level,
    bool BreakGlass,
    string PolicyVersion,
    WhatIfObligations? Obligations,
    IReadOnlyList<WhatIfMatchedRule> Matched,
    IReadOnlyList<string> Notes);

/// <summary>A policy file: its name, the SHA-256 of its text, and the text (left out of history listings).</summary>
public sealed record PolicyFileInfo(string Name, string Sha256, string? Content);

/// <summary>A policy version the proxy put in force: its history id, hash, time and files.</summary>
public sealed record PolicyVersionInfo(long Id, string Hash, DateTimeOffset LoadedAt, IReadOnlyList<PolicyFileInfo> Files);

/// <summary>One problem of a refused policy change, at file:line:column.</summary>
public sealed record PolicyProblem(string File, int Line, int Column, string Message);

/// <summary>The last change to the policy files that was refused; the version in force stayed.</summary>
public sealed record PolicyRejectionInfo(DateTimeOffset At, IReadOnlyList<PolicyProblem> Problems);

/// <summary>The policy in force (<c>GET /api/v1/policy</c>): its version with the files' text, counts, and the last refused change if any.</summary>
public sealed record PolicyInForce(PolicyVersionInfo Version, int Rules, int ConsentEntries, PolicyRejectionInfo? LastRejection);
