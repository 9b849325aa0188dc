using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Crypto;

/// <summary>
/// The on-cloud format of a record: a 32-byte header followed by AES-256-GCM segments.
/// See docs/encryption-format.md for the construction and what it does and does not protect.
/// </summary>
/// <remarks>
/// Header: magic "TPX" | version 1 | segment size (uint32 BE) | HKDF salt (16) | nonce prefix (7) | reserved 0.
/// Segment i: AES-256-GCM(key, nonce = prefix | i (uint32 BE) | final, aad = header | object index | i | final).
/// The segment key is HKDF-SHA256(data key, salt, "TrustedProxy/object/v1" | object index), so the
/// same data key written under two object indexes never reuses a (key, nonce) pair.
/// </remarks>
internal static class SegmentedEnvelope
{
    public const int HeaderLength = 32;
    public const int TagLength = 16;
    public const int ObjectIndexLength = 16;
    public const int DefaultSegmentSize = 64 * 1024;
    public const int MinSegmentSize = 4 * 1024;
    public const int MaxSegmentSize = 4 * 1024 * 1024;

    private const byte Version = 1;
    private const int SaltLength = 16;
    private const int NoncePrefixLength = 7;
    private const int NonceLength = 12;
    private const int AadLength = HeaderLength + ObjectIndexLength + 4 + 1;
    private static readonly byte[] Magic = "TPX"u8.ToArray();
    private static readonly byte[] KeyInfoLabel = Encoding.ASCII.GetBytes("TrustedProxy/object/v1");

    /// <summary>Size of the ciphertext for a plaintext of <paramref name="plaintextLength"/> bytes.</summary>
    public static long CiphertextLength(long plaintextLength, int segmentSize = DefaultSegmentSize)
    {
        var segments = Math.Max(1, (plaintextLength + segmentSize - 1) / segmentSize);
        return HeaderLength + plaintextLength + segments * TagLength;
    }

    public static byte[] CreateHeader(int segmentSize)
    {
        ValidateSegmentSize(segmentSize);
        var header = new byte[HeaderLength];
        Magic.CopyTo(header, 0);
        header[3] = Version;
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), (uint)segmentSize);
        RandomNumberGenerator.Fill(header.AsSpan(8, SaltLength + NoncePrefixLength));
        return header;
    }

    /// <summary>Checks a header read back from storage and returns its segment size.</summary>
    public static int ParseHeader(ReadOnlySpan<byte> header)
    {
        if (header.Length != HeaderLength || !header[..3].SequenceEqual(Magic))
        {
            throw new EnvelopeIntegrityException("the stored object does not start with a TrustedProxy envelope header");
        }

        if (header[3] != Version)
        {
            throw new EnvelopeIntegrityException($"the stored object has envelope version {header[3]}, this proxy reads version {Version}");
        }

        var segmentSize = BinaryPrimitives.ReadUInt32BigEndian(header[4..]);
        if (segmentSize is < MinSegmentSize or > MaxSegmentSize || header[31] != 0)
        {
            throw new EnvelopeIntegrityException("the stored envelope header is malformed");
        }

        return (int)segmentSize;
    }

    public static AesGcm CreateCipher(DataKey dataKey, ReadOnlySpan<byte> header, ReadOnlySpan<byte> objectIndex)
    {
        if (objectIndex.Length != ObjectIndexLength)
        {
            throw new ArgumentException($"an object index is {ObjectIndexLength} bytes", nameof(objectIndex));
        }

        Span<byte> info = stackalloc byte[KeyInfoLabel.Length + ObjectIndexLength];
        KeyInfoLabel.CopyTo(info);
        objectIndex.CopyTo(info[KeyInfoLabel.Length..]);
        Span<byte> key = stackalloc byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, dataKey.Span, key, header.Slice(8, SaltLength), info);
        try
        {
            return new AesGcm(key, TagLength);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>Fills the per-segment nonce and associated data; both bind the segment number and the final flag.</summary>
    public static void SegmentParameters(ReadOnlySpan<byte> header, ReadOnlySpan<byte> objectIndex, uint segment, bool final, Span<byte> nonce, Span<byte> aad)
    {
        header.Slice(8 + SaltLength, NoncePrefixLength).CopyTo(nonce);
        BinaryPrimitives.WriteUInt32BigEndian(nonce[NoncePrefixLength..], segment);
        nonce[NonceLength - 1] = final ? (byte)1 : (byte)0;

        header.CopyTo(aad);
        objectIndex.CopyTo(aad[HeaderLength..]);
        BinaryPrimitives.WriteUInt32BigEndian(aad[(HeaderLength + ObjectIndexLength)..], segment);
        aad[AadLength - 1] = final ? (byte)1 : (byte)0;
    }

    public static int NonceSize => NonceLength;

    public static int AadSize => AadLength;

    private static void ValidateSegmentSize(int segmentSize)
    {
        if (segmentSize is < MinSegmentSize or > MaxSegmentSize)
        {
            throw new ArgumentOutOfRangeException(nameof(segmentSize), segmentSize, $"segment size must be between {MinSegmentSize} and {MaxSegmentSize} bytes");
        }
    }
}
