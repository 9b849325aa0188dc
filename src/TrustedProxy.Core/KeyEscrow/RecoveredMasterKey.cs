using System.Security.Cryptography;
using TrustedProxy.Crypto;

namespace TrustedProxy.KeyEscrow;

/// <summary>A master key rebuilt from shares and checked against its installation id; wiped when disposed.</summary>
internal sealed class RecoveredMasterKey(
    byte[] key, string installationId, string splitId, int threshold, int shareCount,
    IReadOnlyList<string> used, IReadOnlyList<string> inconsistent) : IDisposable
{
    public ReadOnlySpan<byte> Key => key;

    public string InstallationId { get; } = installationId;

    public string SplitId { get; } = splitId;

    public int Threshold { get; } = threshold;

    public int ShareCount { get; } = shareCount;

    /// <summary>The shares the key was rebuilt from.</summary>
    public IReadOnlyList<string> Used { get; } = used;

    /// <summary>Shares given beyond the threshold that are not points of the same split: altered, or forged.</summary>
    public IReadOnlyList<string> Inconsistent { get; } = inconsistent;

    public ProxyKeyRing ToKeyRing() => ProxyKeyRing.FromBytes(key);

    /// <summary>Writes the key where the proxy reads it (data/keys/master.key), in its format, 0600; never over an existing key.</summary>
    public void WriteKeyFile(string path) => ProxyKeyRing.WriteKeyFile(path, key);

    public void Dispose() => CryptographicOperations.ZeroMemory(key);
}
