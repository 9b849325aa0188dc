using System.ComponentModel.DataAnnotations;
using TrustedProxy.Crypto;

namespace TrustedProxy.Records;

/// <summary>How records are stored and read back. Section TrustedProxy:Records.</summary>
public sealed record RecordStoreOptions
{
    /// <summary>Largest upload accepted, in bytes; larger bodies get 413.</summary>
    [Range(1024, long.MaxValue)]
    public long MaxUploadBytes { get; init; } = 4L * 1024 * 1024 * 1024;

    /// <summary>Largest STOW-RS request (all its instances together), in bytes.</summary>
    [Range(1024, long.MaxValue)]
    public long MaxStowBytes { get; init; } = 64L * 1024 * 1024 * 1024;

    /// <summary>Plaintext bytes per encrypted segment.</summary>
    [Range(SegmentedEnvelope.MinSegmentSize, SegmentedEnvelope.MaxSegmentSize)]
    public int SegmentSize { get; init; } = SegmentedEnvelope.DefaultSegmentSize;

    /// <summary>Records up to this size are verified and decrypted once, in memory, on retrieval; larger ones are verified from a local scratch file (ciphertext only) and decrypted again as they stream.</summary>
    [Range(0, 1L << 30)]
    public long InMemoryVerifyLimitBytes { get; init; } = 8 * 1024 * 1024;

    /// <summary>Most instances one WADO-RS retrieval (a study or series) returns.</summary>
    [Range(1, 1_000_000)]
    public int MaxRetrieveInstances { get; init; } = 10_000;

    /// <summary>Most records returned by one search.</summary>
    [Range(1, 100_000)]
    public int MaxSearchResults { get; init; } = 1000;

    /// <summary>
    /// What an upload of an instance the same organisation already stored (same SOP Instance UID)
    /// does when its file differs: <see cref="KeepFirst"/> refuses it, <see cref="Replace"/> stores it
    /// and deletes the old record, <see cref="KeepAll"/> stores it beside the old one (an archive that
    /// keeps every version, or a test corpus whose variants share a UID). The same file again is
    /// always answered "already stored".
    /// </summary>
    [RegularExpression("^(keep-first|replace|keep-all)$", ErrorMessage = "DuplicateInstance must be keep-first, replace or keep-all")]
    public string DuplicateInstance { get; init; } = KeepFirst;

    public const string KeepFirst = "keep-first";

    public const string Replace = "replace";

    public const string KeepAll = "keep-all";

    public bool ReplacesDuplicates => DuplicateInstance == Replace;
}
