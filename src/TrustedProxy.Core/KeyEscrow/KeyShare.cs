using System.Security.Cryptography;

namespace TrustedProxy.KeyEscrow;

/// <summary>
/// One custodian's share of the master key, with what it takes to name it when it is the wrong
/// one: the installation whose key it shares, the split it belongs to (a later split of the same
/// key draws new polynomials, and its shares do not combine with these), the threshold, the count,
/// and its point x. <see cref="Source"/> is where it was read from, for messages.
/// </summary>
internal sealed class KeyShare : IDisposable
{
    private readonly byte[] _value;

    public KeyShare(string installationId, string splitId, int threshold, int shareCount, byte index, byte[] value, string source)
    {
        InstallationId = installationId;
        SplitId = splitId;
        Threshold = threshold;
        ShareCount = shareCount;
        Index = index;
        _value = value;
        Source = source;
    }

    public string InstallationId { get; }

    public string SplitId { get; }

    public int Threshold { get; }

    public int ShareCount { get; }

    /// <summary>The point x = 1..n at which this share holds the polynomials' values.</summary>
    public byte Index { get; }

    /// <summary>The polynomials' values at <see cref="Index"/>, one byte per byte of the key.</summary>
    public ReadOnlySpan<byte> Value => _value;

    public string Source { get; }

    public void Dispose() => CryptographicOperations.ZeroMemory(_value);
}
