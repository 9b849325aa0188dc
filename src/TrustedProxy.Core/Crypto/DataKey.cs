using System.Security.Cryptography;

namespace TrustedProxy.Crypto;

/// <summary>A fresh 256-bit key for one record's contents. Wiped on dispose.</summary>
internal sealed class DataKey : IDisposable
{
    public const int Bytes = 32;

    private readonly byte[] _key;

    public DataKey(byte[] key)
    {
        if (key.Length != Bytes)
        {
            throw new ArgumentException($"a data key is {Bytes} bytes", nameof(key));
        }

        _key = key;
    }

    public ReadOnlySpan<byte> Span => _key;

    public static DataKey CreateRandom() => new(RandomNumberGenerator.GetBytes(Bytes));

    public void Dispose() => CryptographicOperations.ZeroMemory(_key);
}
