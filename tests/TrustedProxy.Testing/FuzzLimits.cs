using TrustedProxy.Dicom;

namespace TrustedProxy.Testing;

/// <summary>
/// The DICOM reader's limits under fuzzing, shared by the in-suite fuzz test and the AFL++ harness
/// (tests/TrustedProxy.Fuzz links this file): tight enough that a hostile declared length is
/// refused long before either's memory bound.
/// </summary>
internal static class FuzzLimits
{
    public static DicomReaderLimits Dicom { get; } = new()
    {
        MaxDecodedBytes = 64L * 1024 * 1024,
        MaxValueLength = 32L * 1024 * 1024,
        MaxNestedValueLength = 8L * 1024 * 1024,
        MaxHeaderBytes = 16L * 1024 * 1024,
        MaxElements = 200_000,
        MaxSequenceDepth = 64,
    };
}
