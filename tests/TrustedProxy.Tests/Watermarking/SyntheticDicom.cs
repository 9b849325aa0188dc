using System.Buffers.Binary;
using System.Globalization;
using TrustedProxy.Dicom;

namespace TrustedProxy.Tests.Watermarking;

/// <summary>What a generated image holds.</summary>
public enum Content
{
    /// <summary>CT-like: a smooth field with a disk and Gaussian noise, well inside the range.</summary>
    Smooth,

    /// <summary>The same field stretched so that large areas clip at the minimum and the maximum.</summary>
    Saturated,

    /// <summary>One value everywhere.</summary>
    Flat,

    /// <summary>Uniform noise over the middle half of the range: nothing is predictable, nothing is near the range ends.</summary>
    Noise,
}

/// <summary>One generated image: its pixel format and content.</summary>
public sealed record ImageSpec
{
    public int Rows { get; init; } = 96;

    public int Columns { get; init; } = 80;

    public int Frames { get; init; } = 1;

    public int Samples { get; init; } = 1;

    public bool Planar { get; init; }

    public int BitsAllocated { get; init; } = 16;

    public int BitsStored { get; init; } = 12;

    public int? HighBit { get; init; }

    public bool Signed { get; init; }

    public string Photometric { get; init; } = "MONOCHROME2";

    public string TransferSyntax { get; init; } = TrustedProxy.Dicom.TransferSyntax.ExplicitVRLittleEndianUid;

    public Content Content { get; init; } = Content.Smooth;

    /// <summary>Fill the bits outside BitsStored..HighBit with random garbage (as overlays in old files).</summary>
    public bool GarbageOutsideStoredBits { get; init; }

    public int Seed { get; init; } = 1;

    public override string ToString() =>
        $"{Rows}x{Columns}x{Samples}{(Planar ? "p" : "")} f{Frames} {BitsAllocated}/{BitsStored}/{HighBit ?? BitsStored - 1} {(Signed ? "s" : "u")} {Photometric} {Content} ts={TransferSyntax}{(GarbageOutsideStoredBits ? " garbage" : "")}";
}

/// <summary>Writes generated images as real Part 10 files and reads them back through the proxy's reader.</summary>
public static class SyntheticDicom
{
    public const string SopInstanceUid = "2.25.99887766554433221100";
    public const string StudyInstanceUid = "2.25.11112222333344445555";
    public const string SeriesInstanceUid = "2.25.66667777888899990000";
    public const string PatientId = "WM-PATIENT-1";

    public static async Task<DicomFile> CreateAsync(ImageSpec spec) => await DicomFile.ReadAsync(new MemoryStream(await BuildAsync(spec)));

    public static async Task<byte[]> BuildAsync(ImageSpec spec)
    {
        var syntax = TransferSyntax.FromUid(spec.TransferSyntax);
        var encoding = DicomEncoding.Of(syntax);
        var meta = new DicomDataset(DicomEncoding.ExplicitLittle);
        meta.Set(DicomElement.Create(DicomTag.FileMetaInformationGroupLength, DicomVR.UL, new byte[4]));
        meta.Set(DicomElement.Create(new DicomTag(0x0002, 0x0001), DicomVR.OB, new byte[] { 0, 1 }));
        meta.Set(DicomElement.Text(DicomTag.MediaStorageSopClassUid, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.7"));
        meta.Set(DicomElement.Text(DicomTag.MediaStorageSopInstanceUid, DicomVR.UI, SopInstanceUid));
        meta.Set(DicomElement.Text(DicomTag.TransferSyntaxUid, DicomVR.UI, spec.TransferSyntax));

        var d = new DicomDataset(encoding);
        d.Set(DicomElement.Text(DicomTag.SopClassUid, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.7"));
        d.Set(DicomElement.Text(DicomTag.SopInstanceUid, DicomVR.UI, SopInstanceUid));
        d.Set(DicomElement.Text(DicomTag.PatientId, DicomVR.LO, PatientId));
        d.Set(DicomElement.Text(DicomTag.StudyInstanceUid, DicomVR.UI, StudyInstanceUid));
        d.Set(DicomElement.Text(DicomTag.SeriesInstanceUid, DicomVR.UI, SeriesInstanceUid));
        d.Set(DicomElement.UInt16(DicomTag.SamplesPerPixel, (ushort)spec.Samples, encoding));
        d.Set(DicomElement.Text(DicomTag.PhotometricInterpretation, DicomVR.CS, spec.Photometric));
        if (spec.Samples > 1)
        {
            d.Set(DicomElement.UInt16(DicomTag.PlanarConfiguration, (ushort)(spec.Planar ? 1 : 0), encoding));
        }

        if (spec.Frames > 1)
        {
            d.Set(DicomElement.Text(DicomTag.NumberOfFrames, DicomVR.IS, spec.Frames.ToString(CultureInfo.InvariantCulture)));
        }

        d.Set(DicomElement.UInt16(DicomTag.Rows, (ushort)spec.Rows, encoding));
        d.Set(DicomElement.UInt16(DicomTag.Columns, (ushort)spec.Columns, encoding));
        d.Set(DicomElement.UInt16(DicomTag.BitsAllocated, (ushort)spec.BitsAllocated, encoding));
        d.Set(DicomElement.UInt16(DicomTag.BitsStored, (ushort)spec.BitsStored, encoding));
        d.Set(DicomElement.UInt16(new DicomTag(0x0028, 0x0102), (ushort)(spec.HighBit ?? spec.BitsStored - 1), encoding));
        d.Set(DicomElement.UInt16(DicomTag.PixelRepresentation, (ushort)(spec.Signed ? 1 : 0), encoding));
        d.Set(DicomElement.Create(DicomTag.PixelData, spec.BitsAllocated == 8 ? DicomVR.OB : DicomVR.OW, PixelBytes(spec, encoding.BigEndian)));

        var file = new DicomFile(new byte[128], meta, d, syntax);
        return await file.ToBytesAsync();
    }

    /// <summary>Stored values in pydicom's order: frame, row, column, sample.</summary>
    public static long[] StoredValues(ImageSpec spec)
    {
        long min = spec.Signed ? -(1L << (spec.BitsStored - 1)) : 0;
        long max = spec.Signed ? (1L << (spec.BitsStored - 1)) - 1 : (1L << spec.BitsStored) - 1;
        var random = new Random(spec.Seed);
        var values = new long[spec.Frames * spec.Rows * spec.Columns * spec.Samples];
        var i = 0;
        for (var f = 0; f < spec.Frames; f++)
        {
            for (var y = 0; y < spec.Rows; y++)
            {
                for (var x = 0; x < spec.Columns; x++)
                {
                    for (var c = 0; c < spec.Samples; c++)
                    {
                        double v;
                        switch (spec.Content)
                        {
                            case Content.Flat:
                                v = 0.37;
                                break;
                            case Content.Noise:
                                v = 0.25 + 0.5 * random.NextDouble();
                                break;
                            default:
                                var field = 0.45 + 0.2 * Math.Sin(2 * Math.PI * (x / (double)spec.Columns * 1.3 + f * 0.11)) * Math.Cos(2 * Math.PI * (y / (double)spec.Rows + c * 0.2));
                                var dx = x - spec.Columns / 2.0;
                                var dy = y - spec.Rows / 2.0;
                                field += Math.Sqrt(dx * dx + dy * dy) < Math.Min(spec.Rows, spec.Columns) / 4.0 ? 0.15 : 0;
                                v = spec.Content == Content.Saturated ? 0.5 + (field - 0.5) * 6 : field;
                                break;
                        }

                        var noise = spec.Content is Content.Smooth or Content.Saturated ? Gaussian(random) * Math.Max(1, (max - min) * 0.002) : 0;
                        values[i++] = Math.Clamp((long)Math.Round(min + v * (max - min) + noise), min, max);
                    }
                }
            }
        }

        return values;
    }

    /// <summary>The Pixel Data bytes for the spec: stored values placed at HighBit, the layout and byte order it asks for.</summary>
    public static byte[] PixelBytes(ImageSpec spec, bool bigEndian)
    {
        var values = StoredValues(spec);
        var bytesPerSample = spec.BitsAllocated / 8;
        var plane = spec.Rows * spec.Columns;
        var frameSamples = plane * spec.Samples;
        var data = new byte[values.Length * bytesPerSample + ((values.Length * bytesPerSample) & 1)];
        var highBit = spec.HighBit ?? spec.BitsStored - 1;
        var shift = highBit - spec.BitsStored + 1;
        var mask = spec.BitsStored == 32 ? uint.MaxValue : (1u << spec.BitsStored) - 1;
        var garbage = new Random(spec.Seed + 7);
        for (var i = 0; i < values.Length; i++)
        {
            // Pydicom order (pixel-interleaved) to file order (planar when asked).
            var frame = i / frameSamples;
            var within = i % frameSamples;
            var target = spec.Planar && spec.Samples > 1 ? frame * frameSamples + (within % spec.Samples) * plane + within / spec.Samples : i;
            var raw = ((uint)values[i] & mask) << shift;
            if (spec.GarbageOutsideStoredBits)
            {
                raw |= (uint)garbage.NextInt64(0, 1L << 32) & ~(mask << shift);
            }

            var at = target * bytesPerSample;
            switch (bytesPerSample)
            {
                case 1:
                    data[at] = (byte)raw;
                    break;
                case 2:
                    if (bigEndian)
                    {
                        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(at), (ushort)raw);
                    }
                    else
                    {
                        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(at), (ushort)raw);
                    }

                    break;
                default:
                    if (bigEndian)
                    {
                        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(at), raw);
                    }
                    else
                    {
                        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(at), raw);
                    }

                    break;
            }
        }

        return data;
    }

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
