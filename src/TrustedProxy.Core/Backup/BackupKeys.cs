using System.Buffers.Binary;
using System.Security.Cryptography;
using TrustedProxy.Crypto;
using TrustedProxy.Storage;

namespace TrustedProxy.Backup;

/// <summary>
/// The two keys of the backup, both derived from the master key, so a fresh machine holding only
/// the key (rebuilt from custodians' shares) can find and open a backup: a sealing key (AES-256-GCM)
/// and a naming key (HMAC-SHA256, a PRF of generation and sequence number). A name is the PRF's first
/// 16 bytes in <see cref="ObjectName"/>'s own format, so it cannot be told from a random name
/// without the key.
/// </summary>
internal sealed class BackupKeys : IDisposable
{
    /// <summary>HKDF info of the sealing key.</summary>
    public const string SealingInfo = "TrustedProxy/backup/v1";

    /// <summary>HKDF info of the naming key.</summary>
    public const string NamingInfo = "TrustedProxy/backup-names/v1";

    /// <summary>The sequence number of a generation's manifest (its data objects count up from 0).</summary>
    public const ulong ManifestSequence = ulong.MaxValue;

    private readonly byte[] _sealing;
    private readonly byte[] _naming;

    private BackupKeys(byte[] sealing, byte[] naming)
    {
        _sealing = sealing;
        _naming = naming;
    }

    public static BackupKeys From(ProxyKeyRing keys) => new(keys.Derive(SealingInfo), keys.Derive(NamingInfo));

    /// <summary>The sealing key (the caller must not keep or wipe it).</summary>
    internal ReadOnlySpan<byte> SealingKey => _sealing;

    /// <summary>The name of object <paramref name="sequence"/> of <paramref name="generation"/>.</summary>
    public ObjectName NameOf(long generation, ulong sequence)
    {
        Span<byte> input = stackalloc byte[16];
        BinaryPrimitives.WriteInt64BigEndian(input, generation);
        BinaryPrimitives.WriteUInt64BigEndian(input[8..], sequence);
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_naming, input, mac);
        return ObjectName.Parse(Convert.ToHexStringLower(mac[..ObjectName.Bytes]));
    }

    public ObjectName ManifestNameOf(long generation) => NameOf(generation, ManifestSequence);

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_sealing);
        CryptographicOperations.ZeroMemory(_naming);
    }
}
