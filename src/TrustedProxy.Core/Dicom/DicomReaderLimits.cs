using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.Dicom;

/// <summary>
/// Bounds on what the DICOM reader accepts. Every one is explicit so that a hostile file cannot
/// make the proxy allocate, recurse or loop without limit. Configured under TrustedProxy:Dicom.
/// </summary>
public sealed record DicomReaderLimits
{
    /// <summary>Largest data set, in decoded bytes (after inflating a deflated transfer syntax).</summary>
    [Range(1024, long.MaxValue)]
    public long MaxDecodedBytes { get; init; } = 8L * 1024 * 1024 * 1024;

    /// <summary>Largest single value (an element, or one fragment of encapsulated pixel data).</summary>
    [Range(16, uint.MaxValue - 1)]
    public long MaxValueLength { get; init; } = 4L * 1024 * 1024 * 1024 - 2;

    /// <summary>Deepest nesting of sequences.</summary>
    [Range(1, 1024)]
    public int MaxSequenceDepth { get; init; } = 64;

    /// <summary>Most elements (including items and fragments) in one file.</summary>
    [Range(1, long.MaxValue)]
    public long MaxElements { get; init; } = 1_000_000;

    /// <summary>Largest value inside a sequence (such values are always held in memory).</summary>
    [Range(16, int.MaxValue)]
    public long MaxNestedValueLength { get; init; } = 64L * 1024 * 1024;

    /// <summary>Most bytes of header (every value but the large top-level ones) held in memory for one file.</summary>
    [Range(1024, int.MaxValue)]
    public long MaxHeaderBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>What to do with a file whose preamble holds an executable header (CVE-2019-11687).</summary>
    public ExecutablePreamblePolicy ExecutablePreamble { get; init; } = ExecutablePreamblePolicy.Zero;

    /// <summary>Largest file meta information group.</summary>
    [Range(64, 16 * 1024 * 1024)]
    public int MaxFileMetaLength { get; init; } = 64 * 1024;

    public static DicomReaderLimits Default { get; } = new();
}
