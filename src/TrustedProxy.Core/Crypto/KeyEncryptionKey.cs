using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Crypto;

/// <summary>
/// Wraps per-record data keys. The wrapped form is bound to the record handle, so a wrapped key
/// copied onto another index row does not unwrap there.
/// Layout: version (1) | nonce (12) | ciphertext (32) | tag (16) = 61 bytes.
/// </summary>
internal sealed class KeyEncryptionKey : IDisposable
{
    public const int WrappedLength = 1 + NonceBytes + DataKey.Bytes + TagBytes;

    private const byte Version = 1;
    private const int NonceBytes = 12;
    private const int TagBytes = 16;
    private static readonly byte[] AadLabel = Encoding.ASCII.GetBytes("TrustedProxy/dek/v1\0");

    // One AesGcm instance is not safe for concurrent use (it holds one OpenSSL context): uploads
    // wrap keys in parallel, so every use takes the lock. Found by the kill -9 test, whose
    // concurrent uploads produced keys that no longer unwrapped.
    private readonly Lock _gate = new();
    private readonly AesGcm _aes;
    private readonly byte[] _key;

    public KeyEncryptionKey(byte[] key)
    {
        _key = key;
        _aes = new AesGcm(key, TagBytes);
    }

    public byte[] Wrap(DataKey dataKey, string recordHandle)
    {
        var wrapped = new byte[WrappedLength];
        wrapped[0] = Version;
        var nonce = wrapped.AsSpan(1, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        lock (_gate)
        {
            _aes.Encrypt(nonce, dataKey.Span, wrapped.AsSpan(1 + NonceBytes, DataKey.Bytes), wrapped.AsSpan(1 + NonceBytes + DataKey.Bytes, TagBytes), Aad(recordHandle));
        }

        return wrapped;
    }

    public DataKey Unwrap(ReadOnlySpan<byte> wrapped, string recordHandle)
    {
        if (wrapped.Length != WrappedLength || wrapped[0] != Version)
        {
            throw new EnvelopeIntegrityException("the wrapped data key has an unknown format");
        }

        var key = new byte[DataKey.Bytes];
        try
        {
            lock (_gate)
            {
                _aes.Decrypt(wrapped.Slice(1, NonceBytes), wrapped.Slice(1 + NonceBytes, DataKey.Bytes), wrapped.Slice(1 + NonceBytes + DataKey.Bytes, TagBytes), key, Aad(recordHandle));
            }
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(key);
            throw new EnvelopeIntegrityException("the wrapped data key does not belong to this record or was altered");
        }

        return new DataKey(key);
    }

    private static byte[] Aad(string recordHandle) => [.. AadLabel, .. Encoding.ASCII.GetBytes(recordHandle)];

    public void Dispose()
    {
        _aes.Dispose();
        CryptographicOperations.ZeroMemory(_key);
    }
}
