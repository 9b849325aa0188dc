using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using TrustedProxy.Rendering;

namespace TrustedProxy.Watermarking;

/// <summary>PNG scanline filter types (PNG specification, section 9).</summary>
internal enum PngFilter : byte
{
    None = 0,
    Sub = 1,
    Up = 2,
    Average = 3,
    Paeth = 4,
}

/// <summary>
/// A lossless PNG of one frame's stored values, for export and for leak tracing: 8-bit samples
/// when BitsStored ≤ 8, else 16-bit; grey or RGB. Each sample is the stored value, plus
/// 2^(BitsStored−1) when signed so that the order of values is kept. No windowing, no rescale, no
/// MONOCHROME1 inversion: unlike <c>Rendering/DicomRenderer</c> (an 8-bit windowed view, which
/// destroys the mark) the PNG holds exactly the values the mark lives in. A tEXt chunk
/// "TrustedProxy" records BitsStored, PixelRepresentation, the offset and the frame.
/// </summary>
internal static class StoredValuePng
{
    public const string TextKeyword = "TrustedProxy";

    /// <summary>Encodes frame <paramref name="frame"/> (0-based); filters chosen per row, or all <paramref name="filter"/> when given.</summary>
    public static byte[] Encode(PixelImage image, int frame = 0, PngFilter? filter = null)
    {
        if (image.BitsStored > 16)
        {
            throw new WatermarkRefusedException(WatermarkRefusalReason.UnsupportedLayout, $"a PNG holds at most 16 bits per sample; this image stores {image.BitsStored}");
        }

        using var buffer = image.RentFrameBuffer();
        image.ReadFrame(frame, buffer);
        var depth = image.BitsStored <= 8 ? 8 : 16;
        var offset = 1 << (image.BitsStored - 1);
        int width = image.Columns, height = image.Rows, channels = image.Channels, plane = image.PixelsPerFrame;
        var bytesPerSample = depth / 8;
        var stride = width * channels * bytesPerSample;
        var raw = new byte[height * stride];
        for (var p = 0; p < plane; p++)
        {
            for (var c = 0; c < channels; c++)
            {
                var value = buffer.Values[c * plane + p] + offset;
                var at = (p * channels + c) * bytesPerSample;
                if (depth == 8)
                {
                    raw[at] = (byte)value;
                }
                else
                {
                    BinaryPrimitives.WriteUInt16BigEndian(raw.AsSpan(at), (ushort)value);
                }
            }
        }

        var text = string.Create(CultureInfo.InvariantCulture,
            $"stored values; BitsStored={image.BitsStored}; PixelRepresentation={(image.Signed ? 1 : 0)}; Offset={(image.Signed ? offset : 0)}; Frame={frame + 1}; PhotometricInterpretation={image.PhotometricInterpretation}");
        return PngWriter.Write(width, height, depth, channels, raw, filter, new Dictionary<string, string> { [TextKeyword] = text });
    }

    /// <summary>The BitsStored an export recorded in its tEXt chunk, if any.</summary>
    public static int? RecordedBitsStored(PngImage png) =>
        png.Text.TryGetValue(TextKeyword, out var text)
            && text.Split(';', StringSplitOptions.TrimEntries).FirstOrDefault(part => part.StartsWith("BitsStored=", StringComparison.Ordinal)) is { } field
            && int.TryParse(field["BitsStored=".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var bits) && bits is >= 2 and <= 16
            ? bits
            : null;
}

/// <summary>A decoded PNG: samples interleaved, alpha dropped, palette expanded.</summary>
/// <param name="Width">Columns.</param>
/// <param name="Height">Rows.</param>
/// <param name="Channels">1 (grey) or 3 (RGB).</param>
/// <param name="BitDepth">Bits per sample: 1, 2, 4, 8 or 16 (8 for palette images).</param>
/// <param name="Samples">Width × Height × Channels values in [0, 2^BitDepth).</param>
/// <param name="Text">tEXt chunks, keyword to text.</param>
internal sealed record PngImage(int Width, int Height, int Channels, int BitDepth, ushort[] Samples, IReadOnlyDictionary<string, string> Text)
{
    /// <summary>
    /// The samples as a frame of <paramref name="bitsStored"/>-bit unsigned values (channel planes),
    /// or null when some sample does not fit. <paramref name="channels"/> 1 on an RGB image takes the first channel.
    /// </summary>
    public FrameBuffer? ToFrame(int bitsStored, int channels)
    {
        if (channels > Channels)
        {
            return null;
        }

        var frame = new FrameBuffer(Height, Width, channels, bitsStored);
        var limit = 1 << bitsStored;
        var offset = 1 << (bitsStored - 1);
        var plane = Width * Height;
        for (var p = 0; p < plane; p++)
        {
            for (var c = 0; c < channels; c++)
            {
                int value = Samples[p * Channels + c];
                if (value >= limit)
                {
                    return null;
                }

                frame.Values[c * plane + p] = value - offset;
            }
        }

        return frame;
    }

    /// <summary>An RGB image whose three channels are equal everywhere (grey saved as colour).</summary>
    public bool IsGreyAsColour()
    {
        if (Channels != 3)
        {
            return false;
        }

        for (var i = 0; i < Samples.Length; i += 3)
        {
            if (Samples[i] != Samples[i + 1] || Samples[i] != Samples[i + 2])
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>Writes PNG files: grey or RGB, 8 or 16 bits, non-interlaced, zlib-compressed, filters per row.</summary>
internal static class PngWriter
{
    public static byte[] Write(int width, int height, int depth, int channels, ReadOnlySpan<byte> raw, PngFilter? filter, IReadOnlyDictionary<string, string>? text = null)
    {
        var bpp = channels * depth / 8;
        var stride = width * bpp;
        using var output = new MemoryStream();
        output.Write(PngChunks.Signature);
        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], height);
        header[8] = (byte)depth;
        header[9] = channels == 1 ? (byte)0 : (byte)2;
        PngChunks.Write(output, "IHDR", header);
        foreach (var (keyword, value) in text ?? new Dictionary<string, string>())
        {
            PngChunks.Write(output, "tEXt", Encoding.Latin1.GetBytes(keyword + "\0" + value));
        }

        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            var previous = new byte[stride];
            var line = new byte[stride + 1];
            var best = new byte[stride + 1];
            for (var row = 0; row < height; row++)
            {
                var current = raw.Slice(row * stride, stride);
                if (filter is { } fixedFilter)
                {
                    Filter(fixedFilter, current, previous, bpp, line);
                    zlib.Write(line);
                }
                else
                {
                    // The usual heuristic: the filter whose output has the smallest sum of absolute (signed) bytes.
                    var bestScore = long.MaxValue;
                    for (var f = PngFilter.None; f <= PngFilter.Paeth; f++)
                    {
                        Filter(f, current, previous, bpp, line);
                        long score = 0;
                        for (var i = 1; i < line.Length; i++)
                        {
                            score += Math.Abs((int)(sbyte)line[i]);
                        }

                        if (score < bestScore)
                        {
                            bestScore = score;
                            line.CopyTo(best, 0);
                        }
                    }

                    zlib.Write(best);
                }

                current.CopyTo(previous);
            }
        }

        PngChunks.Write(output, "IDAT", compressed.GetBuffer().AsSpan(0, (int)compressed.Length));
        PngChunks.Write(output, "IEND", []);
        return output.ToArray();
    }

    private static void Filter(PngFilter filter, ReadOnlySpan<byte> current, ReadOnlySpan<byte> previous, int bpp, Span<byte> line)
    {
        line[0] = (byte)filter;
        for (var i = 0; i < current.Length; i++)
        {
            int a = i >= bpp ? current[i - bpp] : 0, b = previous[i], c = i >= bpp ? previous[i - bpp] : 0;
            line[i + 1] = (byte)(current[i] - filter switch
            {
                PngFilter.Sub => a,
                PngFilter.Up => b,
                PngFilter.Average => (a + b) >> 1,
                PngFilter.Paeth => PngChunks.Paeth(a, b, c),
                _ => 0,
            });
        }
    }
}

/// <summary>
/// Reads PNG files: every colour type and bit depth of the specification, Adam7 or not, CRCs
/// checked, alpha dropped, palettes expanded. Enough to read back what any lossless tool writes
/// from stored values; refuses (<see cref="FormatException"/>) anything malformed.
/// </summary>
internal static class PngDecoder
{
    /// <summary>Refuses images beyond this many samples before allocating for them.</summary>
    public const long MaxSamples = 1L << 28;

    /// <summary>
    /// The most filtered image data read (the decompressed IDAT stream). With <see cref="MaxSamples"/>
    /// it bounds what a PNG can make the decoder hold, however its data is compressed.
    /// </summary>
    public const long MaxInflatedBytes = 1L << 30;

    /// <summary>The first buffer for decompressed data; it doubles while the data keeps coming.</summary>
    private const int InitialInflateBytes = 64 * 1024;

    public static PngImage Decode(ReadOnlySpan<byte> png)
    {
        if (png.Length < 8 || !png[..8].SequenceEqual(PngChunks.Signature))
        {
            throw new FormatException("not a PNG file (bad signature)");
        }

        int width = 0, height = 0, depth = 0, colourType = -1, interlace = 0;
        byte[]? palette = null;
        var text = new Dictionary<string, string>(StringComparer.Ordinal);
        using var idat = new MemoryStream();
        var at = 8;
        var ended = false;
        while (!ended)
        {
            if (png.Length - at < 12)
            {
                throw new FormatException("the PNG ends inside a chunk");
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(png[at..]);
            if (length < 0 || length > png.Length - at - 12)
            {
                throw new FormatException("a PNG chunk's length runs past the end of the file");
            }

            var type = Encoding.ASCII.GetString(png.Slice(at + 4, 4));
            var data = png.Slice(at + 8, length);
            var crc = BinaryPrimitives.ReadUInt32BigEndian(png[(at + 8 + length)..]);
            if (PngChunks.Crc(png.Slice(at + 4, 4 + length)) != crc)
            {
                throw new FormatException($"the CRC of chunk {type} does not match");
            }

            at += 12 + length;
            if (colourType < 0 && type != "IHDR")
            {
                throw new FormatException("the first PNG chunk is not IHDR");
            }

            switch (type)
            {
                case "IHDR":
                    if (length != 13)
                    {
                        throw new FormatException("IHDR is not 13 bytes");
                    }

                    width = BinaryPrimitives.ReadInt32BigEndian(data);
                    height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                    depth = data[8];
                    colourType = data[9];
                    interlace = data[12];
                    if (data[10] != 0 || data[11] != 0 || interlace > 1)
                    {
                        throw new FormatException("unknown PNG compression, filter or interlace method");
                    }

                    break;
                case "PLTE":
                    palette = data.ToArray();
                    break;
                case "IDAT":
                    idat.Write(data);
                    break;
                case "tEXt":
                    var separator = data.IndexOf((byte)0);
                    if (separator > 0)
                    {
                        text[Encoding.Latin1.GetString(data[..separator])] = Encoding.Latin1.GetString(data[(separator + 1)..]);
                    }

                    break;
                case "IEND":
                    ended = true;
                    break;
            }
        }

        var channels = colourType switch
        {
            0 when depth is 1 or 2 or 4 or 8 or 16 => 1,
            2 when depth is 8 or 16 => 3,
            3 when depth is 1 or 2 or 4 or 8 => 1,
            4 when depth is 8 or 16 => 2,
            6 when depth is 8 or 16 => 4,
            _ => throw new FormatException($"PNG colour type {colourType} with bit depth {depth} is not valid"),
        };
        if (width <= 0 || height <= 0 || (long)width * height * channels > MaxSamples)
        {
            throw new FormatException($"a {width}×{height} PNG is outside the sizes read here");
        }

        if (colourType == 3 && (palette is null || palette.Length % 3 != 0 || palette.Length == 0))
        {
            throw new FormatException("a palette PNG without a valid PLTE chunk");
        }

        // Inflated first: the samples are allocated only once the data has shown it holds them.
        var inflated = Inflate(idat, width, height, channels, depth, interlace);
        var samples = new ushort[width * height * channels];
        Unfilter(inflated, width, height, channels, depth, interlace, samples);
        return Convert(width, height, channels, depth, colourType, palette, samples, text);
    }

    private static byte[] Inflate(MemoryStream idat, int width, int height, int channels, int depth, int interlace)
    {
        long expected = 0;
        foreach (var (w, h) in Passes(width, height, interlace))
        {
            if (w > 0 && h > 0)
            {
                expected += h * (1 + ((long)w * channels * depth + 7) / 8);
            }
        }

        if (expected > MaxInflatedBytes)
        {
            throw new FormatException($"a {width}×{height} PNG would inflate past {MaxInflatedBytes} bytes, the most read here");
        }

        // The header only claims a size: the buffer grows as the compressed data actually yields
        // bytes, so a few bytes claiming a huge image cost a few kilobytes, not what they claim.
        var inflated = new byte[(int)Math.Min(expected, InitialInflateBytes)];
        var filled = 0;
        idat.Position = 0;
        using var zlib = new ZLibStream(idat, CompressionMode.Decompress);
        try
        {
            while (filled < expected)
            {
                if (filled == inflated.Length)
                {
                    Array.Resize(ref inflated, (int)Math.Min(expected, 2L * inflated.Length));
                }

                var read = zlib.Read(inflated, filled, inflated.Length - filled);
                if (read == 0)
                {
                    throw new FormatException($"the PNG image data is truncated: {filled} of the {expected} bytes its header claims");
                }

                filled += read;
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            // Corrupt deflate data is an InvalidDataException, but a zlib header that asks for a
            // preset dictionary (FDICT, which PNG forbids) ends in zlib's Z_NEED_DICT, surfaced as
            // an IOException (found by fuzzing, docs/fuzzing.md). The source is in memory, so an
            // IOException here can only be the inflater's.
            throw new FormatException("the PNG image data is not valid zlib", e);
        }

        return inflated;
    }

    private static IEnumerable<(int Width, int Height)> Passes(int width, int height, int interlace)
    {
        if (interlace == 0)
        {
            yield return (width, height);
            yield break;
        }

        foreach (var (x0, y0, dx, dy) in Adam7)
        {
            yield return ((width - x0 + dx - 1) / dx, (height - y0 + dy - 1) / dy);
        }
    }

    private static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    private static void Unfilter(byte[] data, int width, int height, int channels, int depth, int interlace, ushort[] samples)
    {
        var bpp = Math.Max(1, channels * depth / 8);
        var at = 0;
        var passes = interlace == 0 ? [(0, 0, 1, 1)] : Adam7;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            int w = (width - x0 + dx - 1) / dx, h = (height - y0 + dy - 1) / dy;
            if (w <= 0 || h <= 0)
            {
                continue;
            }

            var stride = (int)(((long)w * channels * depth + 7) / 8);
            var previous = new byte[stride];
            for (var row = 0; row < h; row++)
            {
                var filter = data[at];
                var line = data.AsSpan(at + 1, stride);
                at += 1 + stride;
                for (var i = 0; i < stride; i++)
                {
                    int a = i >= bpp ? line[i - bpp] : 0, b = previous[i], c = i >= bpp ? previous[i - bpp] : 0;
                    line[i] += filter switch
                    {
                        0 => 0,
                        1 => (byte)a,
                        2 => (byte)b,
                        3 => (byte)((a + b) >> 1),
                        4 => (byte)PngChunks.Paeth(a, b, c),
                        _ => throw new FormatException($"unknown PNG filter type {filter}"),
                    };
                }

                line.CopyTo(previous);
                var y = y0 + row * dy;
                for (var x = 0; x < w; x++)
                {
                    for (var c = 0; c < channels; c++)
                    {
                        var index = x * channels + c;
                        int value = depth switch
                        {
                            16 => BinaryPrimitives.ReadUInt16BigEndian(line[(2 * index)..]),
                            8 => line[index],
                            _ => (line[index * depth / 8] >> (8 - depth - (index * depth % 8))) & ((1 << depth) - 1),
                        };
                        samples[((y * width) + x0 + x * dx) * channels + c] = (ushort)value;
                    }
                }
            }
        }
    }

    private static PngImage Convert(int width, int height, int channels, int depth, int colourType, byte[]? palette, ushort[] samples, Dictionary<string, string> text)
    {
        var pixels = width * height;
        switch (colourType)
        {
            case 3:
                var entries = palette!.Length / 3;
                var grey = Enumerable.Range(0, entries).All(i => palette[3 * i] == palette[3 * i + 1] && palette[3 * i] == palette[3 * i + 2]);
                var outChannels = grey ? 1 : 3;
                var expanded = new ushort[pixels * outChannels];
                for (var p = 0; p < pixels; p++)
                {
                    var index = samples[p];
                    if (index >= entries)
                    {
                        throw new FormatException("a palette index is outside the palette");
                    }

                    for (var c = 0; c < outChannels; c++)
                    {
                        expanded[p * outChannels + c] = palette[3 * index + c];
                    }
                }

                return new PngImage(width, height, outChannels, 8, expanded, text);
            case 4:
            case 6:
                var kept = channels - 1;
                var opaque = new ushort[pixels * kept];
                for (var p = 0; p < pixels; p++)
                {
                    samples.AsSpan(p * channels, kept).CopyTo(opaque.AsSpan(p * kept));
                }

                return new PngImage(width, height, kept, depth, opaque, text);
            default:
                return new PngImage(width, height, channels, depth, samples, text);
        }
    }
}
