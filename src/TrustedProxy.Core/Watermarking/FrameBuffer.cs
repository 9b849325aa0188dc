using System.Buffers;

namespace TrustedProxy.Watermarking;

/// <summary>
/// One frame's samples as integers, channel planes one after another (plane c holds
/// Rows × Columns values in raster order), in the symmetric range
/// [<see cref="Min"/>, <see cref="Max"/>] = [−2^(B−1), 2^(B−1)−1] of <see cref="BitsStored"/> bits.
/// Reused from frame to frame; nothing in it is shared. <see cref="Rent"/>ed buffers come from the
/// shared array pool (a 2048² frame is 16 MiB, which would otherwise land on the large object heap
/// at every call) and go back on <see cref="Dispose"/>; their array may be longer than <see cref="Length"/>.
/// </summary>
internal sealed class FrameBuffer : IDisposable
{
    private bool _pooled;

    public FrameBuffer(int rows, int columns, int channels, int bitsStored)
        : this(rows, columns, channels, bitsStored, null)
    {
    }

    private FrameBuffer(int rows, int columns, int channels, int bitsStored, int[]? values)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(columns, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(bitsStored, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bitsStored, 32);
        Rows = rows;
        Columns = columns;
        Channels = channels;
        BitsStored = bitsStored;
        Min = (int)-(1L << (bitsStored - 1));
        Max = (int)((1L << (bitsStored - 1)) - 1);
        Length = checked(rows * columns * channels);
        _pooled = values is not null;
        Values = values ?? new int[Length];
    }

    public int Rows { get; }

    public int Columns { get; }

    public int Channels { get; }

    public int BitsStored { get; }

    public int Min { get; }

    public int Max { get; }

    /// <summary>Channels × Rows × Columns values; the first <see cref="Length"/> of them are the frame.</summary>
    public int[] Values { get; }

    /// <summary>Samples in the frame (all channels).</summary>
    public int Length { get; }

    public int PlaneLength => Rows * Columns;

    /// <summary>The peak for PSNR: the width of the stored-value range, 2^BitsStored − 1.</summary>
    public double Peak => Math.Pow(2, BitsStored) - 1;

    /// <summary>A buffer whose array comes from the shared pool; dispose it to give the array back.</summary>
    public static FrameBuffer Rent(int rows, int columns, int channels, int bitsStored) =>
        new(rows, columns, channels, bitsStored, ArrayPool<int>.Shared.Rent(checked(rows * columns * channels)));

    public FrameBuffer Clone()
    {
        var copy = new FrameBuffer(Rows, Columns, Channels, BitsStored);
        Values.AsSpan(0, Length).CopyTo(copy.Values);
        return copy;
    }

    public void Dispose()
    {
        if (_pooled)
        {
            _pooled = false;
            ArrayPool<int>.Shared.Return(Values);
        }
    }
}
