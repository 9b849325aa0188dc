using TrustedProxy.Storage;
using TrustedProxy.Watermarking;

namespace TrustedProxy.Records;

/// <summary>Where a record is in its life.</summary>
public enum RecordState
{
    /// <summary>Encrypted in the local staging area, on its way to the backend; not yet acknowledged (write-through).</summary>
    Staged,

    /// <summary>Every block in the backend; acknowledged.</summary>
    Stored,

    /// <summary>Being removed from the backend; gone from every answer (records of index versions before 3).</summary>
    Deleting,

    /// <summary>Acknowledged and durable in the local upload cache; some or all blocks not yet released to the backend. Served from the cache.</summary>
    Cached,
}

/// <summary>
/// One record in the proxy's index. It holds what the proxy needs to find, authorize and decrypt
/// a record, and nothing else: the patient appears only as a keyed pseudonym, the data key only wrapped.
/// </summary>
internal sealed record RecordEntry
{
    /// <summary>Whether the record is acknowledged and may be answered (stored, or waiting in the upload cache).</summary>
    public bool IsAvailable => State is RecordState.Stored or RecordState.Cached;

    public required string Handle { get; init; }

    /// <summary>
    /// The record's envelope index: bound into its encryption. For records of index versions
    /// before 3 it is also the name of its single cloud object; newer records live in blocks
    /// under names of their own (see the blocks table).
    /// </summary>
    public required ObjectName ObjectName { get; init; }

    public required byte[] WrappedKey { get; init; }

    /// <summary>The patient's pseudonym, scoped by issuer or origin organisation (<see cref="Pseudonymization.PatientScope"/>).</summary>
    public string? PatientPseudonym { get; init; }

    /// <summary>The pseudonym of the Patient ID alone, whoever issued it: searches that name no issuer match on it.</summary>
    public string? PatientIdMatch { get; init; }

    public string? StudyInstanceUid { get; init; }

    public string? SeriesInstanceUid { get; init; }

    public string? SopInstanceUid { get; init; }

    public string? SopClassUid { get; init; }

    public string? Modality { get; init; }

    public DateOnly? StudyDate { get; init; }

    public required string TransferSyntaxUid { get; init; }

    public required long PlaintextLength { get; init; }

    public required long StoredLength { get; init; }

    public required byte[] ContentSha256 { get; init; }

    public required string OriginOrganisation { get; init; }

    public required RecordState State { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>The record's DICOM header as a small Part 10 file, sealed under the record's data key.</summary>
    public byte[]? SealedMetadata { get; init; }

    public string? AccessionPseudonym { get; init; }

    public int? SeriesNumber { get; init; }

    public int? InstanceNumber { get; init; }

    /// <summary>The patient's pseudonym in de-identified views (not the index pseudonym).</summary>
    public string? ResearchPseudonym { get; init; }

    /// <summary>The UIDs as de-identified views show them, so that a query in such a view can name them.</summary>
    public string? DeidentifiedStudyUid { get; init; }

    public string? DeidentifiedSeriesUid { get; init; }

    public string? DeidentifiedSopInstanceUid { get; init; }

    /// <summary>How the record's integrity and origin are bound: a seal in its pixels, a detached seal, or none (index versions before 5, files above the in-memory limit).</summary>
    public RecordSealKind Seal { get; init; }

    /// <summary>The detached seal, for <see cref="RecordSealKind.Detached"/>.</summary>
    public byte[]? DetachedSeal { get; init; }

    /// <summary>Why the record is sealed as it is (the scheme's refusal, or the PSNR of the seal); never patient data.</summary>
    public string? SealDetail { get; init; }

    /// <summary>The SHA-256 of the file as uploaded; differs from <see cref="ContentSha256"/> (the stored, sealed file) when sealed in the pixels.</summary>
    public byte[]? OriginalSha256 { get; init; }

    /// <summary>The digest of the original file, the one handed out unmarked.</summary>
    public byte[] OriginalDigest => OriginalSha256 ?? ContentSha256;

    /// <summary>What the policy decision point may know about the record.</summary>
    public Policy.RecordAttributes Attributes => new(Handle, OriginOrganisation, PatientPseudonym, Modality, StudyDate);
}

/// <summary>A search over the index; every criterion is optional and they combine with AND.</summary>
internal sealed record RecordQuery
{
    public string? PatientPseudonym { get; init; }

    /// <summary>Matches every record whose Patient ID is this one, whichever patient (scope) it belongs to.</summary>
    public string? PatientIdMatch { get; init; }

    /// <summary>Matches the patient's de-identified-view pseudonym instead.</summary>
    public string? ResearchPseudonym { get; init; }

    public string? AccessionPseudonym { get; init; }

    public string? StudyInstanceUid { get; init; }

    public string? SeriesInstanceUid { get; init; }

    public string? SopInstanceUid { get; init; }

    /// <summary>Match the UIDs above against the UIDs of de-identified views.</summary>
    public bool DeidentifiedUids { get; init; }

    public string? Modality { get; init; }

    public DateOnly? StudyDateFrom { get; init; }

    public DateOnly? StudyDateTo { get; init; }

    /// <summary>Restricts to records uploaded by these organisations: the only ones any policy rule could permit (a superset; each record is still decided).</summary>
    public IReadOnlyCollection<string>? OriginOrganisations { get; init; }

    public int Limit { get; init; } = 100;

    public int Offset { get; init; }
}
