using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Watermarking;

/// <summary>
/// The keys of the watermarking, each HKDF-SHA256-derived from the one key the proxy hands in
/// (the server derives that one from its master key with <see cref="ProxyKeyPurpose"/>), so that
/// no key does two jobs: scrambling the embedded bits, the seal MAC, the fingerprint MAC, and the
/// 64-bit tags that stand for organisations, consumers and requests inside a payload.
/// </summary>
internal sealed class WatermarkKeys : IDisposable
{
    /// <summary>What the server passes to <c>ProxyKeyRing.Derive</c> to get the key for this class.</summary>
    public const string ProxyKeyPurpose = "TrustedProxy/watermark/v1";

    // HKDF info strings: versioned, since changing one invalidates every mark made under it.
    internal const string EmbeddingInfo = "TrustedProxy/watermark/embedding/v1";
    internal const string SealInfo = "TrustedProxy/watermark/seal/v1";
    internal const string FingerprintInfo = "TrustedProxy/watermark/fingerprint/v1";
    internal const string IdentityTagInfo = "TrustedProxy/watermark/identity-tag/v1";

    public const int MinimumKeyBytes = 32;
    private const int DerivedKeyBytes = 32;

    public WatermarkKeys(ReadOnlySpan<byte> proxyKey)
    {
        if (proxyKey.Length < MinimumKeyBytes)
        {
            throw new CryptographicException($"the watermark key must be at least {MinimumKeyBytes} bytes, found {proxyKey.Length}");
        }

        EmbeddingKey = Derive(proxyKey, EmbeddingInfo);
        SealKey = Derive(proxyKey, SealInfo);
        FingerprintKey = Derive(proxyKey, FingerprintInfo);
        IdentityTagKey = Derive(proxyKey, IdentityTagInfo);
    }

    /// <summary>Keys the pseudo-random stream XORed onto every embedded bit.</summary>
    public byte[] EmbeddingKey { get; }

    public byte[] SealKey { get; }

    public byte[] FingerprintKey { get; }

    public byte[] IdentityTagKey { get; }

    /// <summary>
    /// A 64-bit keyed tag standing for an identifier inside a payload: HMAC-SHA256(tag key,
    /// kind ‖ 0x00 ‖ UTF-8 value), first 8 bytes. The kind ("origin", "consumer", "request") keeps
    /// an organisation's tag from ever equalling a request's.
    /// </summary>
    public ulong Tag(string kind, string value)
    {
        var input = Encoding.UTF8.GetBytes(kind + "\0" + value);
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(IdentityTagKey, input, mac);
        return BinaryPrimitives.ReadUInt64BigEndian(mac);
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(EmbeddingKey);
        CryptographicOperations.ZeroMemory(SealKey);
        CryptographicOperations.ZeroMemory(FingerprintKey);
        CryptographicOperations.ZeroMemory(IdentityTagKey);
    }

    private static byte[] Derive(ReadOnlySpan<byte> key, string info)
    {
        var derived = new byte[DerivedKeyBytes];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, key, derived, salt: [], Encoding.UTF8.GetBytes(info));
        return derived;
    }
}

/// <summary>
/// The bits XORed onto what is embedded: HMAC-SHA256(embedding key, part ‖ block number) in
/// counter mode (the PRF construction of NIST SP 800-108), one independent stream per part of a
/// frame's mark. Without the key the embedded bits read as noise, so the header cannot be parsed
/// and the mark cannot be removed exactly; it is not what authenticates anything (the MACs do).
/// </summary>
internal sealed class WatermarkKeystream(byte[] key)
{
    /// <summary>Writes the first <paramref name="destination"/>.Length bits of stream <paramref name="part"/>, one bit per byte.</summary>
    public void Bits(byte part, Span<byte> destination)
    {
        Span<byte> input = stackalloc byte[5];
        Span<byte> block = stackalloc byte[32];
        input[0] = part;
        for (var blockIndex = 0; blockIndex * 256 < destination.Length; blockIndex++)
        {
            BinaryPrimitives.WriteInt32BigEndian(input[1..], blockIndex);
            HMACSHA256.HashData(key, input, block);
            var start = blockIndex * 256;
            var count = Math.Min(256, destination.Length - start);
            for (var i = 0; i < count; i++)
            {
                destination[start + i] = (byte)((block[i >> 3] >> (7 - (i & 7))) & 1);
            }
        }
    }

    /// <summary>XORs stream <paramref name="part"/> onto <paramref name="bits"/> (one bit per byte).</summary>
    public void Apply(byte part, Span<byte> bits)
    {
        var stream = bits.Length <= 4096 ? stackalloc byte[bits.Length] : new byte[bits.Length];
        Bits(part, stream);
        for (var i = 0; i < bits.Length; i++)
        {
            bits[i] ^= stream[i];
        }
    }
}
