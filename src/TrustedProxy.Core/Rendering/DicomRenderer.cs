using System.Buffers.Binary;
using TrustedProxy.Dicom;

namespace TrustedProxy.Rendering;

/// <summary>A frame cannot be rendered by this proxy (compressed pixel data, an unsupported photometric interpretation).</summary>
public sealed class RenderingNotSupportedException(string reason) : Exception(reason);

/// <summary>
/// Renders one frame of native (uncompressed) pixel data as an 8-bit PNG, as WADO-RS /rendered
/// asks: modality rescale, the first VOI window (or the frame's range), MONOCHROME1 inverted;
/// RGB and YBR_FULL colour as RGB. Compressed transfer syntaxes are refused: no codec is served here.
/// </summary>
internal static class DicomRenderer
{
    /// <summary>Renders frame <paramref name="frame"/> (1-based, as in WADO-RS) to PNG bytes.</summary>
    public static byte[] RenderPng(DicomFile file, int frame = 1)
    {
        var d = file.Dataset;
        if (file.TransferSyntax.Encapsulated)
        {
            throw new RenderingNotSupportedException($"the pixel data is compressed ({file.TransferSyntax.Uid}); this proxy renders native pixel data only");
        }

        var pixel = d.Find(DicomTag.PixelData) ?? throw new RenderingNotSupportedException("the object has no pixel data");
        int rows = d.GetUInt16(DicomTag.Rows) ?? 0, columns = d.GetUInt16(DicomTag.Columns) ?? 0, samples = d.GetUInt16(DicomTag.SamplesPerPixel) ?? 1;
        int allocated = d.GetUInt16(DicomTag.BitsAllocated) ?? 0, stored = d.GetUInt16(DicomTag.BitsStored) ?? allocated;
        var frames = (int)(d.GetNumber(DicomTag.NumberOfFrames) ?? 1);
        var photometric = d.GetString(DicomTag.PhotometricInterpretation) ?? "MONOCHROME2";
        if (rows == 0 || columns == 0 || allocated is not (8 or 16) || samples is not (1 or 3) || stored is < 1 or > 16)
        {
            throw new RenderingNotSupportedException($"unsupported pixel layout ({rows}×{columns}, {samples} sample(s), {allocated} bits allocated)");
        }

        if (frame < 1 || frame > frames)
        {
            throw new RenderingNotSupportedException($"frame {frame} does not exist; the object has {frames}");
        }

        var bytesPerSample = allocated / 8;
        var frameBytes = rows * columns * samples * bytesPerSample;
        var data = pixel.Value;
        if (data.Length < frame * frameBytes)
        {
            throw new RenderingNotSupportedException("the pixel data is shorter than its declared dimensions");
        }

        data = data.Slice((frame - 1) * frameBytes, frameBytes);
        var signed = d.GetUInt16(DicomTag.PixelRepresentation) == 1;
        var bigEndian = d.Encoding.BigEndian;
        int Sample(int index)
        {
            var span = data.Span;
            int raw = bytesPerSample == 1 ? span[index] : bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(span[(index * 2)..]) : BinaryPrimitives.ReadUInt16LittleEndian(span[(index * 2)..]);
            raw &= (1 << stored) - 1;
            return signed && (raw & (1 << (stored - 1))) != 0 ? raw - (1 << stored) : raw;
        }

        if (samples == 3)
        {
            return RenderColour(rows, columns, photometric, d.GetUInt16(DicomTag.PlanarConfiguration) == 1, stored, Sample);
        }

        if (photometric is not ("MONOCHROME1" or "MONOCHROME2"))
        {
            throw new RenderingNotSupportedException($"photometric interpretation {photometric} is not rendered");
        }

        var count = rows * columns;
        var slope = d.GetNumber(DicomTag.RescaleSlope) ?? 1;
        var intercept = d.GetNumber(DicomTag.RescaleIntercept) ?? 0;
        var values = new double[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = Sample(i) * slope + intercept;
        }

        double center, width;
        if (d.GetNumber(DicomTag.WindowCenter) is { } c && d.GetNumber(DicomTag.WindowWidth) is { } w && w >= 1)
        {
            (center, width) = (c, w);
        }
        else
        {
            var (min, max) = (values.Min(), values.Max());
            (center, width) = ((min + max) / 2, Math.Max(1, max - min));
        }

        var grey = new byte[count];
        for (var i = 0; i < count; i++)
        {
            // PS3.3 C.11.2.1.2.1, the linear VOI function.
            var y = ((values[i] - (center - 0.5)) / (width - 1) + 0.5) * 255;
            var v = (byte)Math.Clamp(Math.Round(y), 0, 255);
            grey[i] = photometric == "MONOCHROME1" ? (byte)(255 - v) : v;
        }

        return PngEncoder.Encode(columns, rows, 1, grey);
    }

    private static byte[] RenderColour(int rows, int columns, string photometric, bool planar, int stored, Func<int, int> sample)
    {
        if (photometric is not ("RGB" or "YBR_FULL"))
        {
            throw new RenderingNotSupportedException($"photometric interpretation {photometric} is not rendered");
        }

        var count = rows * columns;
        var rgb = new byte[count * 3];
        var shift = Math.Max(0, stored - 8);
        for (var i = 0; i < count; i++)
        {
            int s0, s1, s2;
            if (planar)
            {
                (s0, s1, s2) = (sample(i), sample(count + i), sample(2 * count + i));
            }
            else
            {
                (s0, s1, s2) = (sample(3 * i), sample(3 * i + 1), sample(3 * i + 2));
            }

            (s0, s1, s2) = (s0 >> shift, s1 >> shift, s2 >> shift);
            if (photometric == "YBR_FULL")
            {
                // PS3.3 C.7.6.3.1.2: full-range YCbCr to RGB.
                var (y, cb, cr) = (s0, s1 - 128.0, s2 - 128.0);
                (s0, s1, s2) = ((int)Math.Round(y + 1.402 * cr), (int)Math.Round(y - 0.344136 * cb - 0.714136 * cr), (int)Math.Round(y + 1.772 * cb));
            }

            rgb[3 * i] = (byte)Math.Clamp(s0, 0, 255);
            rgb[3 * i + 1] = (byte)Math.Clamp(s1, 0, 255);
            rgb[3 * i + 2] = (byte)Math.Clamp(s2, 0, 255);
        }

        return PngEncoder.Encode(columns, rows, 3, rgb);
    }
}
