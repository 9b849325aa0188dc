using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TrustedProxy.Dicom;

namespace TrustedProxy.Watermarking;

/// <summary>
/// Native (uncompressed) pixel data as integer stored values, frame by frame, and the way back to
/// bytes. A sample's stored value is its <see cref="BitsStored"/> bits ending at
/// <see cref="HighBit"/>, signed or not; every other bit of the sample cell (overlays or garbage in
/// old files), and every byte after the last frame, is kept exactly as it was when a frame is written back.
/// </summary>
/// <remarks>
/// Frames are handed out as <see cref="FrameBuffer"/>s in an internal representation: the stored
/// value minus 2^(BitsStored−1) when unsigned, the stored value when signed, so that every depth
/// from 2 to 32 bits maps onto the symmetric range [−2^(B−1), 2^(B−1)−1] of an <see cref="int"/>.
/// YBR_FULL_422 (two luma samples share one Cb and one Cr) is handed out as its luma plane only:
/// the chroma samples are never touched.
/// </remarks>
internal sealed class PixelImage
{
    public static readonly DicomTag HighBitTag = new(0x0028, 0x0102);

    // Bigger frames would not fit the int indexing of FrameBuffer; none exist in practice.
    private const long MaxSamplesPerFrame = 1L << 30;

    private readonly ReadOnlyMemory<byte> _data;
    private readonly int _shift;
    private readonly uint _mask;
    private readonly uint _flip;
    private readonly int _extend;

    private PixelImage(ReadOnlyMemory<byte> data, int rows, int columns, int samplesPerPixel, int frames, int bitsAllocated, int bitsStored,
        int highBit, bool signed, bool planar, bool bigEndian, string photometric)
    {
        LumaOnly = photometric == "YBR_FULL_422";
        _data = data;
        Rows = rows;
        Columns = columns;
        SamplesPerPixel = samplesPerPixel;
        Frames = frames;
        BitsAllocated = bitsAllocated;
        BitsStored = bitsStored;
        HighBit = highBit;
        Signed = signed;
        Planar = planar;
        BigEndian = bigEndian;
        PhotometricInterpretation = photometric;
        _shift = highBit - bitsStored + 1;
        _mask = bitsStored == 32 ? uint.MaxValue : (1u << bitsStored) - 1;
        _flip = signed ? 0 : 1u << (bitsStored - 1);
        _extend = 32 - bitsStored;
    }

    public int Rows { get; }

    public int Columns { get; }

    public int SamplesPerPixel { get; }

    public int Frames { get; }

    public int BitsAllocated { get; }

    public int BitsStored { get; }

    public int HighBit { get; }

    /// <summary>PixelRepresentation 1: two's complement stored values.</summary>
    public bool Signed { get; }

    /// <summary>PlanarConfiguration 1: colour-by-plane (only meaningful with 3 samples).</summary>
    public bool Planar { get; }

    public bool BigEndian { get; }

    public string PhotometricInterpretation { get; }

    /// <summary>YBR_FULL_422: only the luma samples are read and written (one channel).</summary>
    public bool LumaOnly { get; }

    /// <summary>Channel planes in a <see cref="FrameBuffer"/>: the samples per pixel, or 1 for YBR_FULL_422.</summary>
    public int Channels => LumaOnly ? 1 : SamplesPerPixel;

    /// <summary>The Pixel Data value as read (never modified).</summary>
    public ReadOnlyMemory<byte> PixelData => _data;

    public int PixelsPerFrame => Rows * Columns;

    /// <summary>Samples of a frame buffer: Rows × Columns × <see cref="Channels"/>.</summary>
    public int SamplesPerFrame => Rows * Columns * Channels;

    /// <summary>Samples of a frame in the Pixel Data (YBR_FULL_422: two per pixel).</summary>
    public int FileSamplesPerFrame => LumaOnly ? Rows * Columns * 2 : Rows * Columns * SamplesPerPixel;

    public int FrameBytes => FileSamplesPerFrame * (BitsAllocated / 8);

    /// <summary>The smallest and largest stored value BitsStored allows.</summary>
    public long MinStoredValue => Signed ? -(1L << (BitsStored - 1)) : 0;

    public long MaxStoredValue => Signed ? (1L << (BitsStored - 1)) - 1 : (1L << BitsStored) - 1;

    /// <summary>Reads the pixel description of a parsed file; refuses (with the reason) what cannot be marked.</summary>
    public static PixelImage FromDicom(DicomFile file)
    {
        if (file.TransferSyntax.Encapsulated)
        {
            throw new WatermarkRefusedException(WatermarkRefusalReason.NotNative,
                $"the pixel data is encapsulated (transfer syntax {file.TransferSyntax.Uid}); compressed pixels are not watermarked");
        }

        var d = file.Dataset;
        var pixel = d.Find(DicomTag.PixelData) ?? throw new WatermarkRefusedException(WatermarkRefusalReason.NoPixelData, "the object has no Pixel Data (7FE0,0010)");
        if (pixel.Fragments is not null)
        {
            throw new WatermarkRefusedException(WatermarkRefusalReason.NotNative, "the Pixel Data is encapsulated");
        }

        if (pixel.IsDeferred)
        {
            throw new WatermarkRefusedException(WatermarkRefusalReason.NoPixelData, "the Pixel Data was not read into memory");
        }

        int Required(DicomTag tag, string name) =>
            d.GetUInt16(tag) ?? throw new WatermarkRefusedException(WatermarkRefusalReason.NoPixelData, $"{name} {tag} is missing");

        var rows = Required(DicomTag.Rows, "Rows");
        var columns = Required(DicomTag.Columns, "Columns");
        var bitsAllocated = Required(DicomTag.BitsAllocated, "BitsAllocated");
        var samples = d.GetUInt16(DicomTag.SamplesPerPixel) ?? 1;
        var bitsStored = d.GetUInt16(DicomTag.BitsStored) ?? bitsAllocated;
        var highBit = d.GetUInt16(HighBitTag) ?? bitsStored - 1;
        var signed = (d.GetUInt16(DicomTag.PixelRepresentation) ?? 0) == 1;
        var planar = samples > 1 && d.GetUInt16(DicomTag.PlanarConfiguration) == 1;
        var photometric = d.GetString(DicomTag.PhotometricInterpretation)?.Trim() ?? (samples == 1 ? "MONOCHROME2" : "RGB");

        var frames = 1;
        if (d.GetString(DicomTag.NumberOfFrames) is { } framesText)
        {
            if (!int.TryParse(framesText.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out frames) || frames < 1)
            {
                throw new WatermarkRefusedException(WatermarkRefusalReason.NoPixelData, $"NumberOfFrames '{framesText}' is not a positive integer");
            }
        }

        if (bitsAllocated == 1)
        {
            // Every change to a binary image is a full-scale error: 45 dB allows one changed pixel
            // in 10^4.5 ≈ 31,623, so even a 512×512 mask could carry 8 bits, not a 504-bit seal.
            throw new WatermarkRefusedException(WatermarkRefusalReason.InsufficientCapacity,
                $"1-bit samples: keeping PSNR at 45 dB allows about {(long)rows * columns / 31_623} changed pixels in this {rows}×{columns} image, far fewer than a 504-bit seal needs");
        }

        if (bitsAllocated is not (8 or 16 or 32))
        {
            throw new WatermarkRefusedException(WatermarkRefusalReason.UnsupportedLayout, $"BitsAllocated {bitsAllocated} is not marked (8, 16 or 32 only)");
        }

        if (bitsStored < 2 || bitsStored > bitsAllocated || highBit < bitsStored - 1 || highBit >= bitsAllocated)
        {
            throw new WatermarkRefusedException(WatermarkRefusalReason.UnsupportedLayout,
                $"BitsStored {bitsStored} / HighBit {highBit} do not describe a usable value in {bitsAllocated} allocated bits");
        }

        var colour = photometric is "RGB" or "YBR_FULL" or "YBR_FULL_422";
        var grey = photometric is "MONOCHROME1" or "MONOCHROME2";
        if (!(samples == 1 && grey) && !(samples == 3 && colour))
        {
            // Palette indices and subsampled YBR do not behave like intensities: a ±1 change would not be a small change.
            throw new WatermarkRefusedException(WatermarkRefusalReason.UnsupportedLayout,
                $"{samples} sample(s) per pixel with photometric interpretation {photometric} is not marked (MONOCHROME1/2, RGB, YBR_FULL and YBR_FULL_422 only)");
        }

        if (photometric == "YBR_FULL_422" && (planar || columns % 2 != 0))
        {
            throw new WatermarkRefusedException(WatermarkRefusalReason.UnsupportedLayout, "YBR_FULL_422 pixel data must be pixel-interleaved with an even number of columns");
        }

        if (rows == 0 || columns == 0)
        {
            throw new WatermarkRefusedException(WatermarkRefusalReason.NoPixelData, $"the image is {rows}×{columns}");
        }

        var samplesPerFrame = (long)rows * columns * (photometric == "YBR_FULL_422" ? 2 : samples);
        if (samplesPerFrame > MaxSamplesPerFrame)
        {
            throw new WatermarkRefusedException(WatermarkRefusalReason.UnsupportedLayout, $"a frame of {samplesPerFrame} samples is too large");
        }

        var needed = samplesPerFrame * (bitsAllocated / 8) * frames;
        if (pixel.Value.Length < needed)
        {
            throw new WatermarkRefusedException(WatermarkRefusalReason.NoPixelData,
                $"the Pixel Data holds {pixel.Value.Length} bytes, fewer than the {needed} its attributes describe");
        }

        return new PixelImage(pixel.Value, rows, columns, samples, frames, bitsAllocated, bitsStored, highBit, signed, planar, d.Encoding.BigEndian, photometric);
    }

    /// <summary>Like <see cref="FromDicom"/>, with the refusal as a value.</summary>
    public static bool TryFromDicom(DicomFile file, out PixelImage image, out WatermarkRefusal? refusal)
    {
        try
        {
            image = FromDicom(file);
            refusal = null;
            return true;
        }
        catch (WatermarkRefusedException e)
        {
            image = null!;
            refusal = e.Refusal;
            return false;
        }
    }

    /// <summary>Samples already unpacked (a decoded PNG): 8 or 16 bits per sample, interleaved, unsigned.</summary>
    internal static PixelImage FromInterleavedSamples(ReadOnlyMemory<byte> bigEndianSamples, int rows, int columns, int channels, int bitsAllocated, int bitsStored) =>
        new(bigEndianSamples, rows, columns, channels, 1, bitsAllocated, bitsStored, bitsStored - 1, signed: false, planar: false, bigEndian: true,
            channels == 1 ? "MONOCHROME2" : "RGB");

    /// <summary>The same layout over other bytes (e.g. a marked copy of the Pixel Data).</summary>
    public PixelImage WithPixelData(ReadOnlyMemory<byte> pixelData)
    {
        if (pixelData.Length < (long)FrameBytes * Frames)
        {
            throw new ArgumentException("the Pixel Data is shorter than the layout describes", nameof(pixelData));
        }

        return new PixelImage(pixelData, Rows, Columns, SamplesPerPixel, Frames, BitsAllocated, BitsStored, HighBit, Signed, Planar, BigEndian, PhotometricInterpretation);
    }

    /// <summary>A frame buffer shaped for this image.</summary>
    public FrameBuffer CreateFrameBuffer() => new(Rows, Columns, Channels, BitsStored);

    /// <summary>A frame buffer shaped for this image, from the array pool: dispose it.</summary>
    public FrameBuffer RentFrameBuffer() => FrameBuffer.Rent(Rows, Columns, Channels, BitsStored);

    /// <summary>Converts an internal value back to the stored value (signed, or unsigned up to 2^32−1).</summary>
    public long ToStoredValue(int internalValue) => Signed ? internalValue : internalValue + (1L << (BitsStored - 1));

    /// <summary>Converts a stored value to the internal representation.</summary>
    public int ToInternalValue(long storedValue) => Signed ? (int)storedValue : (int)(storedValue - (1L << (BitsStored - 1)));

    /// <summary>Unpacks frame <paramref name="frame"/> (0-based) into <paramref name="buffer"/>: channel planes one after another.</summary>
    public void ReadFrame(int frame, FrameBuffer buffer)
    {
        CheckBuffer(buffer);
        var source = FrameSpan(_data.Span, frame);
        var destination = buffer.Values.AsSpan(0, SamplesPerFrame);
        if ((Channels == 1 && !LumaOnly) || Planar)
        {
            ReadSamples(source, destination);
            return;
        }

        var interleaved = ArrayPool<int>.Shared.Rent(FileSamplesPerFrame);
        try
        {
            ReadSamples(source, interleaved.AsSpan(0, FileSamplesPerFrame));
            if (LumaOnly)
            {
                // Y0 Y1 Cb Cr for each pair of pixels (PS3.3 C.7.6.3.1.2).
                for (var p = 0; p < destination.Length; p++)
                {
                    destination[p] = interleaved[((p >> 1) << 2) | (p & 1)];
                }

                return;
            }

            var n = PixelsPerFrame;
            for (var c = 0; c < SamplesPerPixel; c++)
            {
                var plane = destination.Slice(c * n, n);
                for (int p = 0, i = c; p < n; p++, i += SamplesPerPixel)
                {
                    plane[p] = interleaved[i];
                }
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(interleaved);
        }
    }

    /// <summary>
    /// Packs <paramref name="buffer"/> back into frame <paramref name="frame"/> of <paramref name="pixelData"/>,
    /// a buffer laid out like <see cref="PixelData"/> (normally a copy of it): only the stored bits of each sample change.
    /// </summary>
    public void WriteFrame(int frame, FrameBuffer buffer, Span<byte> pixelData)
    {
        CheckBuffer(buffer);
        var destination = FrameSpan(pixelData, frame);
        var source = buffer.Values.AsSpan(0, SamplesPerFrame);
        if ((Channels == 1 && !LumaOnly) || Planar)
        {
            WriteSamples(source, destination);
            return;
        }

        var interleaved = ArrayPool<int>.Shared.Rent(FileSamplesPerFrame);
        try
        {
            if (LumaOnly)
            {
                // The chroma samples are written back as they are, so only the luma changes.
                ReadSamples(destination, interleaved.AsSpan(0, FileSamplesPerFrame));
                for (var p = 0; p < source.Length; p++)
                {
                    interleaved[((p >> 1) << 2) | (p & 1)] = source[p];
                }

                WriteSamples(interleaved.AsSpan(0, FileSamplesPerFrame), destination);
                return;
            }

            var n = PixelsPerFrame;
            for (var c = 0; c < SamplesPerPixel; c++)
            {
                var plane = source.Slice(c * n, n);
                for (int p = 0, i = c; p < n; p++, i += SamplesPerPixel)
                {
                    interleaved[i] = plane[p];
                }
            }

            WriteSamples(interleaved.AsSpan(0, FileSamplesPerFrame), destination);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(interleaved);
        }
    }

    private Span<byte> FrameSpan(Span<byte> data, int frame)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(frame);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(frame, Frames);
        return data.Slice(frame * FrameBytes, FrameBytes);
    }

    private ReadOnlySpan<byte> FrameSpan(ReadOnlySpan<byte> data, int frame)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(frame);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(frame, Frames);
        return data.Slice(frame * FrameBytes, FrameBytes);
    }

    private void CheckBuffer(FrameBuffer buffer)
    {
        if (buffer.Rows != Rows || buffer.Columns != Columns || buffer.Channels != Channels || buffer.BitsStored != BitsStored)
        {
            throw new ArgumentException("the frame buffer does not have this image's shape", nameof(buffer));
        }
    }

    private int ToInternal(uint raw) => (int)((((raw >> _shift) & _mask) ^ _flip) << _extend) >> _extend;

    private uint Merge(uint raw, int value) => (raw & ~(_mask << _shift)) | ((((uint)value & _mask) ^ _flip) << _shift);

    private void ReadSamples(ReadOnlySpan<byte> source, Span<int> destination)
    {
        switch (BitsAllocated)
        {
            case 8:
                for (var i = 0; i < destination.Length; i++)
                {
                    destination[i] = ToInternal(source[i]);
                }

                break;
            case 16:
                var words = MemoryMarshal.Cast<byte, ushort>(source)[..destination.Length];
                if (BigEndian == BitConverter.IsLittleEndian)
                {
                    for (var i = 0; i < words.Length; i++)
                    {
                        destination[i] = ToInternal(BinaryPrimitives.ReverseEndianness(words[i]));
                    }
                }
                else
                {
                    for (var i = ReadWords(words, destination); i < words.Length; i++)
                    {
                        destination[i] = ToInternal(words[i]);
                    }
                }

                break;
            default:
                var longs = MemoryMarshal.Cast<byte, uint>(source)[..destination.Length];
                var swap = BigEndian == BitConverter.IsLittleEndian;
                for (var i = 0; i < longs.Length; i++)
                {
                    destination[i] = ToInternal(swap ? BinaryPrimitives.ReverseEndianness(longs[i]) : longs[i]);
                }

                break;
        }
    }

    private void WriteSamples(ReadOnlySpan<int> source, Span<byte> destination)
    {
        switch (BitsAllocated)
        {
            case 8:
                for (var i = 0; i < source.Length; i++)
                {
                    destination[i] = (byte)Merge(destination[i], source[i]);
                }

                break;
            case 16:
                var words = MemoryMarshal.Cast<byte, ushort>(destination)[..source.Length];
                if (BigEndian == BitConverter.IsLittleEndian)
                {
                    for (var i = 0; i < words.Length; i++)
                    {
                        words[i] = BinaryPrimitives.ReverseEndianness((ushort)Merge(BinaryPrimitives.ReverseEndianness(words[i]), source[i]));
                    }
                }
                else
                {
                    for (var i = WriteWords(source, words); i < words.Length; i++)
                    {
                        words[i] = (ushort)Merge(words[i], source[i]);
                    }
                }

                break;
            default:
                var longs = MemoryMarshal.Cast<byte, uint>(destination)[..source.Length];
                var swap = BigEndian == BitConverter.IsLittleEndian;
                for (var i = 0; i < longs.Length; i++)
                {
                    longs[i] = swap
                        ? BinaryPrimitives.ReverseEndianness(Merge(BinaryPrimitives.ReverseEndianness(longs[i]), source[i]))
                        : Merge(longs[i], source[i]);
                }

                break;
        }
    }

    // 16-bit samples in the machine's byte order (CT and MR, little-endian, on x86 and Arm) are the
    // bulk of every retrieval: ToInternal and Merge on 16 samples at a time, lane by lane. Each
    // returns how many samples it did; the scalar loop does the rest.
    private int ReadWords(ReadOnlySpan<ushort> words, Span<int> destination)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            return 0;
        }

        var mask = Vector256.Create(_mask);
        var flip = Vector256.Create(_flip);
        var (shift, extend) = (_shift, _extend);
        var i = 0;
        for (; i <= words.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
        {
            var (lower, upper) = Vector256.Widen(Vector256.Create(words.Slice(i, Vector256<ushort>.Count)));
            ((((((lower >> shift) & mask) ^ flip) << extend).AsInt32()) >> extend).CopyTo(destination.Slice(i));
            ((((((upper >> shift) & mask) ^ flip) << extend).AsInt32()) >> extend).CopyTo(destination.Slice(i + Vector256<uint>.Count));
        }

        return i;
    }

    private int WriteWords(ReadOnlySpan<int> source, Span<ushort> words)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            return 0;
        }

        var keep = Vector256.Create(~(_mask << _shift));
        var mask = Vector256.Create(_mask);
        var flip = Vector256.Create(_flip);
        var shift = _shift;
        var i = 0;
        for (; i <= words.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
        {
            var (lower, upper) = Vector256.Widen(Vector256.Create(words.Slice(i, Vector256<ushort>.Count)));
            var first = Vector256.Create(source.Slice(i, Vector256<int>.Count)).AsUInt32();
            var second = Vector256.Create(source.Slice(i + Vector256<int>.Count, Vector256<int>.Count)).AsUInt32();
            Vector256.Narrow((lower & keep) | (((first & mask) ^ flip) << shift), (upper & keep) | (((second & mask) ^ flip) << shift)).CopyTo(words.Slice(i));
        }

        return i;
    }
}
