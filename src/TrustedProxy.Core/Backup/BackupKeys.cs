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

    /// <summary>The index of an increment's commit object within the increment (its data objects count up from 0).</summary>
    public const uint CommitIndex = uint.MaxValue;

    /// <summary>Increments of one generation are numbered 0 … MaxIncrements-1 (so none reaches the manifest's sequence).</summary>
    public const long MaxIncrements = (1L << 31) - 1;

    private const ulong IncrementSpace = 1UL << 63;

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

    /// <summary>
    /// The sequence of object <paramref name="index"/> of increment <paramref name="increment"/>: the
    /// increments' own namespace within the generation, 2⁶³ + increment·2³² + index, above any base
    /// object's sequence and below the manifest's; the commit is at index <see cref="CommitIndex"/>.
    /// </summary>
    public static ulong IncrementSequence(long increment, long index)
    {
        if (increment is < 0 or >= MaxIncrements || index is < 0 or > CommitIndex)
        {
            throw new ArgumentOutOfRangeException(nameof(increment), "no such increment object");
        }

        return IncrementSpace + ((ulong)increment << 32) + (ulong)index;
    }

    public ObjectName CommitNameOf(long generation, long increment) => NameOf(generation, IncrementSequence(increment, CommitIndex));

    /// <summary>"12/4", "12/manifest", "12/increment 3/0", "12/increment 3/commit": for messages.</summary>
    public static string Describe(ulong sequence)
    {
        if (sequence == ManifestSequence)
        {
            return "manifest";
        }

        if (sequence < IncrementSpace)
        {
            return sequence.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        var increment = (sequence - IncrementSpace) >> 32;
        var index = (uint)(sequence & uint.MaxValue);
        return FormattableString.Invariant($"increment {increment}/{(index == CommitIndex ? "commit" : index.ToString(System.Globalization.CultureInfo.InvariantCulture))}");
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_sealing);
        CryptographicOperations.ZeroMemory(_naming);
    }
}
