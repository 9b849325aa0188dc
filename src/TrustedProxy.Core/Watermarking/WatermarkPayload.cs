using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using TrustedProxy.Dicom;

namespace TrustedProxy.Watermarking;

/// <summary>What a payload is: the first byte holds the format version (high nibble) and this kind (low nibble).</summary>
internal enum WatermarkKind : byte
{
    Seal = 1,
    Fingerprint = 2,
}

/// <summary>What the proxy seals into an image at ingest.</summary>
/// <param name="RecordHandle">The record's handle: 1 to 32 printable ASCII characters.</param>
/// <param name="OriginOrganisation">The producer's organisation; only its 64-bit keyed tag is embedded.</param>
/// <param name="Time">When it was sealed; embedded to the second.</param>
internal sealed record SealFields(string RecordHandle, string OriginOrganisation, DateTimeOffset Time);

/// <summary>A seal as read back: the handle itself, the organisation as its tag (compare with <see cref="DicomWatermarker.OriginTag"/>).</summary>
internal sealed record SealPayload(string RecordHandle, ulong OriginTag, DateTimeOffset Time);

/// <summary>What the proxy embeds into a copy it hands out.</summary>
/// <param name="ConsumerId">Who receives it (e.g. the organisation of the client certificate); embedded as a 64-bit keyed tag.</param>
/// <param name="RequestId">The request (decision-log) identifier; embedded as a 64-bit keyed tag.</param>
/// <param name="Time">When the copy was handed out; embedded to the second.</param>
internal sealed record FingerprintFields(string ConsumerId, string RequestId, DateTimeOffset Time);

/// <summary>A fingerprint as read back and authenticated: tags to match against consumers and requests.</summary>
internal sealed record FingerprintPayload(ulong ConsumerTag, ulong RequestTag, DateTimeOffset Time);

/// <summary>
/// The two payload formats (all integers big-endian):
/// <code>
/// seal        0x11 | handle length (1) | handle (1..32 ASCII) | origin tag (8) | time (5) | MAC (16)   ≤ 63 bytes = 504 bits
/// fingerprint 0x12 | consumer tag (8) | request tag (8) | time (5) | MAC (16)                            38 bytes = 304 bits
/// </code>
/// Time is unix seconds in 40 bits (unsigned; 32 bits would end in 2106). The MAC is HMAC-SHA256 truncated to 128
/// bits, each kind under its own key (<see cref="WatermarkKeys"/>). The seal's MAC covers, besides
/// the fields, the bound header fields (<see cref="SealBinding"/>) and every byte of the original
/// Pixel Data, so it can only be checked after the pixels are restored; the fingerprint's covers its
/// fields only, so that it can be checked from any copy of any frame, a PNG included.
/// </summary>
internal static class WatermarkPayload
{
    public const byte Version = 1;
    public const int MacBytes = 16;
    public const int MaxHandleLength = 32;
    public const int TimeBytes = 5;
    public const int FingerprintBytes = 1 + 8 + 8 + TimeBytes + MacBytes;

    private static readonly byte[] SealDomain = Encoding.ASCII.GetBytes("TrustedProxy watermark seal v1\0");
    private static readonly byte[] FingerprintDomain = Encoding.ASCII.GetBytes("TrustedProxy watermark fingerprint v1\0");

    public static byte KindByte(WatermarkKind kind) => (byte)((Version << 4) | (byte)kind);

    public static WatermarkKind? KindOf(ReadOnlySpan<byte> message) =>
        message.IsEmpty || message[0] >> 4 != Version ? null : (message[0] & 0xF) switch
        {
            (byte)WatermarkKind.Seal => WatermarkKind.Seal,
            (byte)WatermarkKind.Fingerprint => WatermarkKind.Fingerprint,
            _ => null,
        };

    public static void ValidateHandle(string handle)
    {
        if (handle.Length is < 1 or > MaxHandleLength || handle.Any(c => c is < '!' or > '~'))
        {
            throw new ArgumentException($"a record handle is 1 to {MaxHandleLength} printable ASCII characters", nameof(handle));
        }
    }

    /// <summary>The seal payload for an image whose bound header is <paramref name="boundHeader"/> and original Pixel Data <paramref name="pixelData"/>.</summary>
    public static byte[] CreateSeal(SealFields fields, WatermarkKeys keys, ReadOnlySpan<byte> boundHeader, ReadOnlySpan<byte> pixelData) =>
        CreateSeal(fields, keys, boundHeader, new PixelSource(pixelData, null));

    /// <summary>The seal payload for an image with encapsulated (compressed) Pixel Data, kept beside the image.</summary>
    public static byte[] CreateSeal(SealFields fields, WatermarkKeys keys, ReadOnlySpan<byte> boundHeader, DicomFragments fragments) =>
        CreateSeal(fields, keys, boundHeader, new PixelSource([], fragments));

    /// <summary>True when the seal's MAC matches the bound header and the (restored) Pixel Data.</summary>
    public static bool VerifySeal(ReadOnlySpan<byte> message, WatermarkKeys keys, ReadOnlySpan<byte> boundHeader, ReadOnlySpan<byte> pixelData) =>
        VerifySeal(message, keys, boundHeader, new PixelSource(pixelData, null));

    /// <summary>True when the seal's MAC matches the bound header and the encapsulated Pixel Data.</summary>
    public static bool VerifySeal(ReadOnlySpan<byte> message, WatermarkKeys keys, ReadOnlySpan<byte> boundHeader, DicomFragments fragments) =>
        VerifySeal(message, keys, boundHeader, new PixelSource([], fragments));

    /// <summary>
    /// The seal payload for a file sealed whole, by its SHA-256, kept beside it: for uploads too
    /// large to hold in memory, or that the whole-file reader cannot parse. Nothing is bound
    /// separately from the header, since the digest covers every byte of the file.
    /// </summary>
    public static byte[] CreateFileSeal(SealFields fields, WatermarkKeys keys, ReadOnlySpan<byte> fileSha256) =>
        CreateSeal(fields, keys, [], new PixelSource(fileSha256, null, WholeFile: true));

    /// <summary>True when a whole-file seal's MAC matches the file's SHA-256.</summary>
    public static bool VerifyFileSeal(ReadOnlySpan<byte> message, WatermarkKeys keys, ReadOnlySpan<byte> fileSha256) =>
        VerifySeal(message, keys, [], new PixelSource(fileSha256, null, WholeFile: true));

    private static byte[] CreateSeal(SealFields fields, WatermarkKeys keys, ReadOnlySpan<byte> boundHeader, PixelSource pixels)
    {
        ValidateHandle(fields.RecordHandle);
        var handle = Encoding.ASCII.GetBytes(fields.RecordHandle);
        var message = new byte[1 + 1 + handle.Length + 8 + TimeBytes + MacBytes];
        message[0] = KindByte(WatermarkKind.Seal);
        message[1] = (byte)handle.Length;
        handle.CopyTo(message, 2);
        var at = 2 + handle.Length;
        BinaryPrimitives.WriteUInt64BigEndian(message.AsSpan(at), keys.Tag("origin", fields.OriginOrganisation));
        WriteTime(message.AsSpan(at + 8), fields.Time);
        SealMac(keys, message.AsSpan(0, message.Length - MacBytes), boundHeader, pixels, message.AsSpan(message.Length - MacBytes));
        return message;
    }

    /// <summary>Reads a seal's fields without checking its MAC (which needs the restored pixels: <c>VerifySeal</c>).</summary>
    public static bool TryReadSeal(ReadOnlySpan<byte> message, out SealPayload payload)
    {
        payload = null!;
        if (KindOf(message) != WatermarkKind.Seal || message.Length < 2)
        {
            return false;
        }

        var length = message[1];
        if (length is < 1 or > MaxHandleLength || message.Length != 2 + length + 8 + TimeBytes + MacBytes)
        {
            return false;
        }

        var handleBytes = message.Slice(2, length);
        foreach (var b in handleBytes)
        {
            if (b is < (byte)'!' or > (byte)'~')
            {
                return false;
            }
        }

        var at = 2 + length;
        if (!TryReadTime(message[(at + 8)..], out var time))
        {
            return false;
        }

        payload = new SealPayload(Encoding.ASCII.GetString(handleBytes), BinaryPrimitives.ReadUInt64BigEndian(message[at..]), time);
        return true;
    }

    private static bool VerifySeal(ReadOnlySpan<byte> message, WatermarkKeys keys, ReadOnlySpan<byte> boundHeader, PixelSource pixels)
    {
        if (!TryReadSeal(message, out _))
        {
            return false;
        }

        Span<byte> expected = stackalloc byte[MacBytes];
        SealMac(keys, message[..^MacBytes], boundHeader, pixels, expected);
        return CryptographicOperations.FixedTimeEquals(expected, message[^MacBytes..]);
    }

    public static byte[] CreateFingerprint(FingerprintFields fields, WatermarkKeys keys)
    {
        var message = new byte[FingerprintBytes];
        message[0] = KindByte(WatermarkKind.Fingerprint);
        BinaryPrimitives.WriteUInt64BigEndian(message.AsSpan(1), keys.Tag("consumer", fields.ConsumerId));
        BinaryPrimitives.WriteUInt64BigEndian(message.AsSpan(9), keys.Tag("request", fields.RequestId));
        WriteTime(message.AsSpan(17), fields.Time);
        FingerprintMac(keys, message.AsSpan(0, FingerprintBytes - MacBytes), message.AsSpan(FingerprintBytes - MacBytes));
        return message;
    }

    /// <summary>Reads a fingerprint and checks its MAC; false for anything else.</summary>
    public static bool TryReadFingerprint(ReadOnlySpan<byte> message, WatermarkKeys keys, out FingerprintPayload payload)
    {
        payload = null!;
        if (KindOf(message) != WatermarkKind.Fingerprint || message.Length != FingerprintBytes)
        {
            return false;
        }

        Span<byte> expected = stackalloc byte[MacBytes];
        FingerprintMac(keys, message[..^MacBytes], expected);
        if (!CryptographicOperations.FixedTimeEquals(expected, message[^MacBytes..]) || !TryReadTime(message[17..], out var time))
        {
            return false;
        }

        payload = new FingerprintPayload(BinaryPrimitives.ReadUInt64BigEndian(message[1..]), BinaryPrimitives.ReadUInt64BigEndian(message[9..]), time);
        return true;
    }

    /// <summary>
    /// HMAC-SHA256(seal key, domain ‖ len ‖ fields ‖ len ‖ bound header ‖ pixels), where pixels are
    /// 0x00 ‖ len ‖ Pixel Data for native data, or 0x01 ‖ count ‖ (len ‖ fragment)… for encapsulated
    /// data (basic offset table first), or 0x02 ‖ len ‖ SHA-256 of the file for a file sealed whole
    /// (with an empty bound header); every length is 8 bytes, big-endian.
    /// </summary>
    private static void SealMac(WatermarkKeys keys, ReadOnlySpan<byte> fields, ReadOnlySpan<byte> boundHeader, PixelSource pixels, Span<byte> destination)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, keys.SealKey);
        Span<byte> length = stackalloc byte[8];
        hmac.AppendData(SealDomain);
        BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)fields.Length);
        hmac.AppendData(length);
        hmac.AppendData(fields);
        BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)boundHeader.Length);
        hmac.AppendData(length);
        hmac.AppendData(boundHeader);
        if (pixels.Fragments is { } fragments)
        {
            hmac.AppendData([1]);
            BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)fragments.Items.Count);
            hmac.AppendData(length);
            foreach (var fragment in fragments.Items)
            {
                BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)fragment.Length);
                hmac.AppendData(length);
                hmac.AppendData(fragment.Span);
            }
        }
        else
        {
            hmac.AppendData([pixels.WholeFile ? (byte)2 : (byte)0]);
            BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)pixels.Native.Length);
            hmac.AppendData(length);
            hmac.AppendData(pixels.Native);
        }

        Span<byte> mac = stackalloc byte[32];
        hmac.GetHashAndReset(mac);
        mac[..MacBytes].CopyTo(destination);
    }

    /// <summary>Native Pixel Data bytes, or encapsulated fragments, or (whole file) the file's SHA-256.</summary>
    private readonly ref struct PixelSource(ReadOnlySpan<byte> native, DicomFragments? fragments, bool WholeFile = false)
    {
        public ReadOnlySpan<byte> Native { get; } = native;

        public DicomFragments? Fragments { get; } = fragments;

        public bool WholeFile { get; } = WholeFile;
    }

    private static void FingerprintMac(WatermarkKeys keys, ReadOnlySpan<byte> fields, Span<byte> destination)
    {
        Span<byte> input = stackalloc byte[FingerprintDomain.Length + fields.Length];
        FingerprintDomain.CopyTo(input);
        fields.CopyTo(input[FingerprintDomain.Length..]);
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(keys.FingerprintKey, input, mac);
        mac[..MacBytes].CopyTo(destination);
    }

    private static void WriteTime(Span<byte> destination, DateTimeOffset time)
    {
        var seconds = time.ToUnixTimeSeconds();
        if (seconds < 0 || seconds >= 1L << (8 * TimeBytes) || seconds > DateTimeOffset.MaxValue.ToUnixTimeSeconds())
        {
            throw new ArgumentOutOfRangeException(nameof(time), "the time must lie between 1970 and the 40-bit limit of unix seconds");
        }

        for (var i = TimeBytes - 1; i >= 0; i--, seconds >>= 8)
        {
            destination[i] = (byte)seconds;
        }
    }

    /// <summary>False for a time past year 9999 (40 bits reach further): only a damaged or forged payload has one.</summary>
    private static bool TryReadTime(ReadOnlySpan<byte> source, out DateTimeOffset time)
    {
        long seconds = 0;
        for (var i = 0; i < TimeBytes; i++)
        {
            seconds = (seconds << 8) | source[i];
        }

        var valid = seconds <= DateTimeOffset.MaxValue.ToUnixTimeSeconds();
        time = valid ? DateTimeOffset.FromUnixTimeSeconds(seconds) : default;
        return valid;
    }
}

/// <summary>
/// The header fields a seal binds, in one canonical byte string: for each attribute of
/// <see cref="Tags"/> in order, its tag (4 bytes), then 0xFF when absent, or 0x01, a 16-bit length
/// and the value. US values are taken as numbers (2 bytes, big-endian) whatever the file's byte
/// order; text values are the bytes as encoded, without trailing padding (NUL or space). The
/// transfer syntax UID comes last, since the Pixel Data bytes mean what it says.
/// </summary>
internal static class SealBinding
{
    public static readonly IReadOnlyList<DicomTag> Tags =
    [
        DicomTag.SopClassUid, DicomTag.SopInstanceUid, DicomTag.PatientId, DicomTag.StudyInstanceUid, DicomTag.SeriesInstanceUid,
        DicomTag.SamplesPerPixel, DicomTag.PhotometricInterpretation, DicomTag.PlanarConfiguration, DicomTag.NumberOfFrames,
        DicomTag.Rows, DicomTag.Columns, DicomTag.BitsAllocated, DicomTag.BitsStored, PixelImage.HighBitTag, DicomTag.PixelRepresentation,
    ];

    private static readonly HashSet<DicomTag> Numbers =
    [
        DicomTag.SamplesPerPixel, DicomTag.PlanarConfiguration, DicomTag.Rows, DicomTag.Columns, DicomTag.BitsAllocated,
        DicomTag.BitsStored, PixelImage.HighBitTag, DicomTag.PixelRepresentation,
    ];

    public static byte[] Serialize(DicomFile file)
    {
        using var output = new MemoryStream();
        Span<byte> scratch = stackalloc byte[4];
        foreach (var tag in Tags)
        {
            BinaryPrimitives.WriteUInt32BigEndian(scratch, tag.Value);
            output.Write(scratch);
            var element = file.Dataset.Find(tag);
            if (element is null)
            {
                output.WriteByte(0xFF);
                continue;
            }

            output.WriteByte(0x01);
            if (Numbers.Contains(tag))
            {
                // A US value too short to be a number is bound as its raw bytes.
                if (file.Dataset.GetUInt16(tag) is { } number)
                {
                    BinaryPrimitives.WriteUInt16BigEndian(scratch, 2);
                    BinaryPrimitives.WriteUInt16BigEndian(scratch[2..], number);
                    output.Write(scratch);
                    continue;
                }
            }

            var value = element.Value.Span.TrimEnd(" \0"u8);
            value = value[..Math.Min(value.Length, ushort.MaxValue)];
            BinaryPrimitives.WriteUInt16BigEndian(scratch, (ushort)value.Length);
            output.Write(scratch[..2]);
            output.Write(value);
        }

        var syntax = Encoding.ASCII.GetBytes(file.TransferSyntax.Uid);
        output.WriteByte((byte)syntax.Length);
        output.Write(syntax);
        return output.ToArray();
    }
}
