using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.Watermarking;

/// <summary>How the server seals records at ingest and fingerprints copies at egress. Section TrustedProxy:Watermarking.</summary>
public sealed record WatermarkingOptions
{
    /// <summary>
    /// Largest file sealed, restored or fingerprinted in memory, in bytes. A file up to this size is
    /// held whole while it is sealed (about three copies of it at once); a larger one streams
    /// straight into its envelope unsealed (integrity from the envelope alone) and its copies go out
    /// unmarked. The same bound applies at retrieval and to the trace endpoint's body.
    /// </summary>
    [Range(1024, 1L << 30)]
    public long MaxInMemoryBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>No frame is marked below this PSNR (dB, peak 2^BitsStored − 1); the image gets a detached seal instead.</summary>
    [Range(30.0, 120.0)]
    public double MinimumPsnr { get; init; } = 45.0;

    /// <summary>Seal deflated files in the pixels (their restored bytes would differ from the upload's); off: they get a detached seal.</summary>
    public bool AllowDeflated { get; init; }
}
