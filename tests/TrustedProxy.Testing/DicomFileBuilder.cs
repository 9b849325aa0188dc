using System.Buffers.Binary;
using System.Text;

namespace TrustedProxy.Testing;

/// <summary>
/// Writes small, valid DICOM Part 10 files (explicit VR little endian) for tests that need
/// sizes or contents the corpus does not have. Values are written as given; text is padded to
/// even length as the standard requires.
/// </summary>
public sealed class DicomFileBuilder
{
    public const string SecondaryCaptureSopClass = "1.2.840.10008.5.1.4.1.1.7";
    public const string CtImageStorageSopClass = "1.2.840.10008.5.1.4.1.1.2";
    private readonly SortedDictionary<uint, (string VR, byte[] Value)> _elements = [];
    private string _sopClassUid = SecondaryCaptureSopClass;

    public DicomFileBuilder(string? sopInstanceUid = null)
    {
        SopInstanceUid = sopInstanceUid ?? "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true);
        Text(0x0008, 0x0016, "UI", SecondaryCaptureSopClass);
        Text(0x0008, 0x0018, "UI", SopInstanceUid);
    }

    public string SopInstanceUid { get; }

    /// <summary>The SOP class, in the dataset and in the file meta information alike (secondary capture unless set).</summary>
    public DicomFileBuilder SopClass(string sopClassUid)
    {
        _sopClassUid = sopClassUid;
        return Text(0x0008, 0x0016, "UI", sopClassUid);
    }

    public DicomFileBuilder Text(ushort group, ushort element, string vr, string value)
    {
        var bytes = Encoding.ASCII.GetBytes(value);
        if (bytes.Length % 2 == 1)
        {
            bytes = [.. bytes, vr == "UI" ? (byte)0 : (byte)' '];
        }

        _elements[((uint)group << 16) | element] = (vr, bytes);
        return this;
    }

    public DicomFileBuilder Patient(string id, string name) => Text(0x0010, 0x0020, "LO", id).Text(0x0010, 0x0010, "PN", name);

    public DicomFileBuilder Study(string studyUid, string seriesUid, string date, string modality) =>
        Text(0x0020, 0x000D, "UI", studyUid).Text(0x0020, 0x000E, "UI", seriesUid).Text(0x0008, 0x0020, "DA", date).Text(0x0008, 0x0060, "CS", modality);

    /// <summary>Native 16-bit pixel data of <paramref name="bytes"/> bytes (rounded up to even), filled from a seeded generator.</summary>
    public DicomFileBuilder PixelData(int bytes, int seed = 1)
    {
        var data = new byte[bytes + (bytes % 2)];
        new Random(seed).NextBytes(data);
        _elements[0x7FE00010] = ("OW", data);
        return this;
    }

    /// <summary>
    /// A native 16-bit monochrome image (12 bits stored) that looks like a CT slice: a smooth disc
    /// with seeded noise, so that it carries a watermark the way real images do.
    /// </summary>
    public DicomFileBuilder Image(int rows, int columns, int seed = 1)
    {
        static byte[] U16(int value) => [(byte)value, (byte)(value >> 8)];
        _elements[0x00280002] = ("US", U16(1));
        _elements[0x00280004] = ("CS", Encoding.ASCII.GetBytes("MONOCHROME2 "));
        _elements[0x00280010] = ("US", U16(rows));
        _elements[0x00280011] = ("US", U16(columns));
        _elements[0x00280100] = ("US", U16(16));
        _elements[0x00280101] = ("US", U16(12));
        _elements[0x00280102] = ("US", U16(11));
        _elements[0x00280103] = ("US", U16(0));
        var random = new Random(seed);
        var data = new byte[rows * columns * 2];
        for (var y = 0; y < rows; y++)
        {
            for (var x = 0; x < columns; x++)
            {
                var dx = (x - (columns / 2.0)) / columns;
                var dy = (y - (rows / 2.0)) / rows;
                var inside = (dx * dx) + (dy * dy) < 0.16;
                var value = (inside ? 1000 + (int)(600 * Math.Cos(dx * 9) * Math.Sin(dy * 7)) : 50) + random.Next(-12, 13);
                BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(((y * columns) + x) * 2), (ushort)Math.Clamp(value, 0, 4095));
            }
        }

        _elements[0x7FE00010] = ("OW", data);
        return this;
    }

    public byte[] Build()
    {
        using var output = new MemoryStream();
        output.Write(new byte[128]);
        output.Write("DICM"u8);

        using var meta = new MemoryStream();
        WriteElement(meta, 0x00020001, "OB", [0, 1]);
        WriteElement(meta, 0x00020002, "UI", Pad(_sopClassUid));
        WriteElement(meta, 0x00020003, "UI", Pad(SopInstanceUid));
        WriteElement(meta, 0x00020010, "UI", Pad("1.2.840.10008.1.2.1"));
        WriteElement(meta, 0x00020012, "UI", Pad("2.25.1"));
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)meta.Length);
        WriteElement(output, 0x00020000, "UL", length.ToArray());
        meta.WriteTo(output);

        foreach (var (tag, (vr, value)) in _elements)
        {
            WriteElement(output, tag, vr, value);
        }

        return output.ToArray();
    }

    public string WriteTo(string path)
    {
        File.WriteAllBytes(path, Build());
        return path;
    }

    private static byte[] Pad(string uid)
    {
        var bytes = Encoding.ASCII.GetBytes(uid);
        return bytes.Length % 2 == 1 ? [.. bytes, 0] : bytes;
    }

    private static void WriteElement(Stream output, uint tag, string vr, byte[] value)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)(tag >> 16));
        BinaryPrimitives.WriteUInt16LittleEndian(header[2..], (ushort)tag);
        header[4] = (byte)vr[0];
        header[5] = (byte)vr[1];
        if (vr is "OB" or "OW" or "SQ" or "UN" or "UT" or "UC" or "UR" or "OD" or "OF" or "OL" or "OV" or "SV" or "UV")
        {
            BinaryPrimitives.WriteUInt32LittleEndian(header[8..], (uint)value.Length);
            output.Write(header);
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(header[6..], (ushort)value.Length);
            output.Write(header[..8]);
        }

        output.Write(value);
    }
}
