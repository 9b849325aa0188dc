namespace TrustedProxy.Dicom;

/// <summary>What is wrong with a file the reader refused.</summary>
public enum DicomFormatProblem
{
    /// <summary>No 128-byte preamble followed by "DICM": not a DICOM Part 10 file.</summary>
    NotPart10,

    /// <summary>The file meta information is missing something the reader needs.</summary>
    InvalidFileMeta,

    /// <summary>The file ends before its structure does.</summary>
    Truncated,

    /// <summary>The structure is inconsistent (bad VR, an element overrunning its item, a stray delimiter).</summary>
    Malformed,

    /// <summary>A configured limit was exceeded.</summary>
    LimitExceeded,

    /// <summary>The preamble holds an executable header and policy refuses such files.</summary>
    ExecutablePreamble,
}

/// <summary>A file the DICOM reader refused, with where and why.</summary>
public sealed class DicomFormatException(DicomFormatProblem problem, long offset, string detail)
    : Exception($"{detail} (at byte offset {offset})")
{
    public DicomFormatProblem Problem { get; } = problem;

    /// <summary>Offset in the data as read (after inflation for deflated files) where the problem was found.</summary>
    public long Offset { get; } = offset;

    public string Detail { get; } = detail;
}
