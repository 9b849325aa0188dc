using System.Collections.Concurrent;

namespace TrustedProxy.Crypto;

/// <summary>
/// Every version of the key-encryption key, each derived from the master key on first use
/// (HKDF-SHA256, info <see cref="ProxyKeyRing.KeyEncryptionInfoFor"/>). Derived rather than random
/// and stored, so that the master key alone (its file, or k custodians' Shamir shares) opens every
/// wrapped key of every version, a restored backup needs no key table, and a rotation needs no new
/// shares. Which version wraps new keys is the index's business (<c>key_versions</c>), not this class's.
/// </summary>
internal sealed class KeyEncryptionKeys(Func<int, byte[]> derive) : IDisposable
{
    /// <summary>Versions are small integers; a header naming a huge one is refused before anything is derived for it.</summary>
    public const int MaxVersion = 1_000_000;

    private readonly ConcurrentDictionary<int, Lazy<KeyEncryptionKey>> _versions = new();

    public KeyEncryptionKey Version(int version)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(version, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(version, MaxVersion);
        return _versions.GetOrAdd(version, v => new Lazy<KeyEncryptionKey>(() => new KeyEncryptionKey(v, derive(v)))).Value;
    }

    public byte[] Wrap(DataKey dataKey, string recordHandle, int version) => Version(version).Wrap(dataKey, recordHandle);

    /// <summary>Unwraps under whichever version the wrapped key names.</summary>
    public DataKey Unwrap(ReadOnlySpan<byte> wrapped, string recordHandle)
    {
        if (!WrappedDataKey.TryReadVersion(wrapped, out var version) || version > MaxVersion)
        {
            throw new EnvelopeIntegrityException("the wrapped data key has an unknown format");
        }

        return Version(version).Unwrap(wrapped, recordHandle);
    }

    public void Dispose()
    {
        foreach (var version in _versions.Values)
        {
            if (version.IsValueCreated)
            {
                version.Value.Dispose();
            }
        }
    }
}
