using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Crypto;

/// <summary>
/// Seals a record's metadata (its DICOM header, kept in the index for queries) under a key derived
/// from the record's own data key: HKDF-SHA256(data key, info "TrustedProxy/metadata/v1"),
/// AES-256-GCM with a random nonce, the record handle as associated data.
/// Layout: version (1) | nonce (12) | ciphertext | tag (16).
/// </summary>
internal static class RecordMetadataSealer
{
    private const byte Version = 1;
    private const int NonceBytes = 12;
    private const int TagBytes = 16;
    private static readonly byte[] Info = Encoding.ASCII.GetBytes("TrustedProxy/metadata/v1");

    public static byte[] Seal(DataKey dataKey, string handle, ReadOnlySpan<byte> metadata)
    {
        var sealedBytes = new byte[1 + NonceBytes + metadata.Length + TagBytes];
        sealedBytes[0] = Version;
        var nonce = sealedBytes.AsSpan(1, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        using var aes = Cipher(dataKey);
        aes.Encrypt(nonce, metadata, sealedBytes.AsSpan(1 + NonceBytes, metadata.Length), sealedBytes.AsSpan(1 + NonceBytes + metadata.Length), Encoding.ASCII.GetBytes(handle));
        return sealedBytes;
    }

    public static byte[] Open(DataKey dataKey, string handle, ReadOnlySpan<byte> sealedBytes)
    {
        if (sealedBytes.Length < 1 + NonceBytes + TagBytes || sealedBytes[0] != Version)
        {
            throw new EnvelopeIntegrityException("the record's metadata has an unknown format");
        }

        var length = sealedBytes.Length - 1 - NonceBytes - TagBytes;
        var metadata = new byte[length];
        using var aes = Cipher(dataKey);
        try
        {
            aes.Decrypt(sealedBytes.Slice(1, NonceBytes), sealedBytes.Slice(1 + NonceBytes, length), sealedBytes[(1 + NonceBytes + length)..], metadata, Encoding.ASCII.GetBytes(handle));
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new EnvelopeIntegrityException("the record's metadata failed authentication");
        }

        return metadata;
    }

    private static AesGcm Cipher(DataKey dataKey)
    {
        Span<byte> key = stackalloc byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, dataKey.Span, key, salt: [], Info);
        try
        {
            return new AesGcm(key, TagBytes);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }
}
