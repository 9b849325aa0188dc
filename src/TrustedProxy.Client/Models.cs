namespace TrustedProxy.Client;

// The wire contracts of the proxy's API. The server answers with these very types, so the two ends cannot drift.

/// <summary>
/// The proxy's answer to an upload; <see cref="Warnings"/> says what it changed (a zeroed executable preamble).
/// <see cref="Seal"/> says how the record's integrity and origin are bound: <c>pixels</c> (a reversible
/// seal in the image itself, removed again at every retrieval), <c>detached</c> (an authenticated
/// signature stored with the record, for images whose pixels cannot carry one, e.g. compressed ones)
/// or <c>none</c> (larger than the proxy seals in memory); <see cref="SealDetail"/> says why.
/// </summary>
public sealed record UploadResult(string Handle, string? SopInstanceUid, long Length, string Location, IReadOnlyList<string>? Warnings = null, string? Seal = null, string? SealDetail = null);

/// <summary>Search criteria; all optional, combined with AND.</summary>
public sealed record RecordSearch
{
    /// <summary>Ask for the de-identified view (as a research purpose does).</summary>
    public bool Deidentified { get; init; }

    public string? PatientId { get; init; }

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

/// <summary>A page of search results.</summary>
public sealed record RecordPage(IReadOnlyList<RecordSummary> Items, int Limit, int Offset);

/// <summary>Who the proxy thinks this client is.</summary>
public sealed record WhoAmI(string Organisation, string Role, string CertificateSerial);

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
