using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Crypto;

/// <summary>
/// One version of the key-encryption key: wraps per-record data keys. The wrapped form is bound to
/// the record handle (and, from format 2, to the key version), so a wrapped key copied onto another
/// index row, or relabelled with another version, does not unwrap.
/// Format 2 (written since key rotation): 2 | key version (4, big-endian) | nonce (12) | ciphertext (32) | tag (16) = 65 bytes.
/// Format 1 (older records, read only, always key version 1): 1 | nonce (12) | ciphertext (32) | tag (16) = 61 bytes.
/// </summary>
internal sealed class KeyEncryptionKey : IDisposable
{
    private const int NonceBytes = 12;
    private const int TagBytes = 16;
    private static readonly byte[] LegacyAadLabel = Encoding.ASCII.GetBytes("TrustedProxy/dek/v1\0");
    private static readonly byte[] AadLabel = Encoding.ASCII.GetBytes("TrustedProxy/dek/v2\0");

    // One AesGcm instance is not safe for concurrent use (it holds one OpenSSL context): uploads
    // wrap keys in parallel, so every use takes the lock. Found by the kill -9 test, whose
    // concurrent uploads produced keys that no longer unwrapped.
    private readonly Lock _gate = new();
    private readonly AesGcm _aes;
    private readonly byte[] _key;

    public KeyEncryptionKey(int version, byte[] key)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(version, 1);
        Version = version;
        _key = key;
        _aes = new AesGcm(key, TagBytes);
    }

    public int Version { get; }

    public byte[] Wrap(DataKey dataKey, string recordHandle)
    {
        var wrapped = new byte[WrappedDataKey.Length];
        wrapped[0] = WrappedDataKey.Format;
        BinaryPrimitives.WriteUInt32BigEndian(wrapped.AsSpan(1, 4), (uint)Version);
        var body = wrapped.AsSpan(WrappedDataKey.HeaderLength);
        var nonce = body[..NonceBytes];
        RandomNumberGenerator.Fill(nonce);
        var aad = Aad(AadLabel, wrapped.AsSpan(0, WrappedDataKey.HeaderLength), recordHandle);
        lock (_gate)
        {
            _aes.Encrypt(nonce, dataKey.Span, body.Slice(NonceBytes, DataKey.Bytes), body.Slice(NonceBytes + DataKey.Bytes, TagBytes), aad);
        }

        return wrapped;
    }

    public DataKey Unwrap(ReadOnlySpan<byte> wrapped, string recordHandle)
    {
        if (!WrappedDataKey.TryReadVersion(wrapped, out var version) || version != Version)
        {
            throw new EnvelopeIntegrityException("the wrapped data key has an unknown format or another key version");
        }

        var legacy = wrapped[0] == WrappedDataKey.LegacyFormat;
        var headerLength = legacy ? 1 : WrappedDataKey.HeaderLength;
        var body = wrapped[headerLength..];
        var aad = legacy ? Aad(LegacyAadLabel, [], recordHandle) : Aad(AadLabel, wrapped[..headerLength], recordHandle);
        var key = new byte[DataKey.Bytes];
        try
        {
            lock (_gate)
            {
                _aes.Decrypt(body[..NonceBytes], body.Slice(NonceBytes, DataKey.Bytes), body.Slice(NonceBytes + DataKey.Bytes, TagBytes), key, aad);
            }
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(key);
            throw new EnvelopeIntegrityException("the wrapped data key does not belong to this record or was altered");
        }

        return new DataKey(key);
    }

    private static byte[] Aad(byte[] label, ReadOnlySpan<byte> header, string recordHandle) =>
        [.. label, .. header, .. Encoding.ASCII.GetBytes(recordHandle)];

    public void Dispose()
    {
        _aes.Dispose();
        CryptographicOperations.ZeroMemory(_key);
    }
}
