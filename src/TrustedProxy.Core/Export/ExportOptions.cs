using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.Export;

/// <summary>
/// The bounds of an export bundle, on both sides: the proxy writes within them and the recipient's
/// reader refuses anything beyond them before it allocates or writes. Section TrustedProxy:Export
/// (the server); the same defaults in <c>tproxy open</c>, each overridable by an option.
/// </summary>
public sealed record ExportOptions
{
    /// <summary>Plaintext bytes per sealed segment the proxy writes (a reader holds one segment at a time).</summary>
    [Range(ExportFormat.MinSegmentSize, ExportFormat.MaxSegmentSize)]
    public int SegmentSize { get; init; } = 64 * 1024;

    /// <summary>Most records one bundle carries (a study of more is exported series by series).</summary>
    [Range(1, 1_000_000)]
    public int MaxRecords { get; init; } = 10_000;

    /// <summary>Largest plaintext of one record in a bundle, in bytes.</summary>
    [Range(1, long.MaxValue)]
    public long MaxRecordBytes { get; init; } = 4L * 1024 * 1024 * 1024;

    /// <summary>Largest plaintext of a whole bundle, in bytes (what the recipient's disk must hold).</summary>
    [Range(1, long.MaxValue)]
    public long MaxBundleBytes { get; init; } = 64L * 1024 * 1024 * 1024;

    /// <summary>Largest signer certificate (DER) a bundle may carry.</summary>
    [Range(256, 64 * 1024)]
    public int MaxSignerCertificateBytes { get; init; } = 16 * 1024;
}
