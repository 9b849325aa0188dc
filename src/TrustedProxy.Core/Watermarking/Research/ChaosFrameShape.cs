namespace TrustedProxy.Watermarking.Research;

/// <summary>
/// The shape of one frame handed to <see cref="ChaoticImageCipher"/>: samples are unsigned stored
/// values in [0, 2^<see cref="BitsStored"/>), channel planes one after another (plane c holds
/// Width × Height values in raster order), as in <see cref="FrameBuffer"/>.
/// </summary>
internal sealed record ChaosFrameShape
{
    public ChaosFrameShape(int width, int height, int samplesPerPixel, int bitsStored)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(samplesPerPixel, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(bitsStored, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bitsStored, 32);
        Width = width;
        Height = height;
        SamplesPerPixel = samplesPerPixel;
        BitsStored = bitsStored;
        SampleCount = checked(width * height * samplesPerPixel);
        Mask = bitsStored == 32 ? uint.MaxValue : (1u << bitsStored) - 1;
    }

    public int Width { get; }

    public int Height { get; }

    public int SamplesPerPixel { get; }

    public int BitsStored { get; }

    /// <summary>Width × Height × SamplesPerPixel.</summary>
    public int SampleCount { get; }

    /// <summary>2^BitsStored − 1: the largest sample value, and the modulus minus one of the diffusion.</summary>
    public uint Mask { get; }

    public int PlaneLength => Width * Height;
}
