using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace TrustedProxy.Audit;

/// <summary>
/// The hashes of the audit log, each domain-separated so that no hash of one kind can be passed off
/// as another: an entry's hash (over the exact bytes stored, prefixed with a versioned label), and
/// RFC 6962 Merkle-tree hashes over entry hashes (0x00 before a leaf, 0x01 before two children).
/// </summary>
internal static class AuditHashes
{
    public const int Length = 32;

    /// <summary>Prefixes every entry's body before hashing; a new entry format gets a new label.</summary>
    public const string EntryLabel = "TrustedProxy/audit-entry/v1";

    private const byte LeafPrefix = 0x00;
    private const byte NodePrefix = 0x01;
    private static readonly byte[] EntryPrefix = [.. Encoding.ASCII.GetBytes(EntryLabel), 0x00];

    /// <summary>What the first entry names as its predecessor.</summary>
    public static string GenesisHex { get; } = new string('0', Length * 2);

    /// <summary>SHA-256("TrustedProxy/audit-entry/v1" || 0x00 || body): the body carries the previous entry's hash, so this chains.</summary>
    public static byte[] Entry(ReadOnlySpan<byte> body)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(EntryPrefix);
        hash.AppendData(body);
        return hash.GetHashAndReset();
    }

    /// <summary>RFC 6962 leaf hash: SHA-256(0x00 || entry hash).</summary>
    public static byte[] Leaf(ReadOnlySpan<byte> entryHash)
    {
        Span<byte> input = stackalloc byte[1 + Length];
        input[0] = LeafPrefix;
        entryHash.CopyTo(input[1..]);
        return SHA256.HashData(input);
    }

    /// <summary>RFC 6962 interior node: SHA-256(0x01 || left || right).</summary>
    public static byte[] Node(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
    {
        Span<byte> input = stackalloc byte[1 + (2 * Length)];
        input[0] = NodePrefix;
        left.CopyTo(input[1..]);
        right.CopyTo(input[(1 + Length)..]);
        return SHA256.HashData(input);
    }

    public static string Hex(ReadOnlySpan<byte> hash) => Convert.ToHexStringLower(hash);

    /// <summary>Entry times: UTC, fixed width, so that the text signed and hashed never depends on how a parser re-formats it.</summary>
    public static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
}

/// <summary>
/// The right edge of an RFC 6962 Merkle tree as leaves are added: the roots of its perfect
/// subtrees, largest first (one per bit of the size). The root of the whole tree folds them from
/// the right, which is exactly MTH(D[n]) of RFC 6962 section 2.1. Memory is O(log n).
/// </summary>
internal sealed class MerkleFrontier
{
    private readonly List<byte[]> _subtrees;

    public MerkleFrontier()
        : this(0, [])
    {
    }

    private MerkleFrontier(long size, List<byte[]> subtrees)
    {
        Size = size;
        _subtrees = subtrees;
    }

    public long Size { get; private set; }

    public void Add(ReadOnlySpan<byte> entryHash)
    {
        var node = AuditHashes.Leaf(entryHash);

        // Each trailing 1-bit of the old size is a subtree of the same height as the new node: merge.
        for (var size = Size; (size & 1) == 1; size >>= 1)
        {
            node = AuditHashes.Node(_subtrees[^1], node);
            _subtrees.RemoveAt(_subtrees.Count - 1);
        }

        _subtrees.Add(node);
        Size++;
    }

    /// <summary>MTH of the leaves so far; SHA-256 of nothing for the empty tree (RFC 6962).</summary>
    public byte[] Root()
    {
        if (_subtrees.Count == 0)
        {
            return SHA256.HashData(ReadOnlySpan<byte>.Empty);
        }

        var root = _subtrees[^1];
        for (var i = _subtrees.Count - 2; i >= 0; i--)
        {
            root = AuditHashes.Node(_subtrees[i], root);
        }

        return root;
    }

    public MerkleFrontier Clone() => new(Size, [.. _subtrees]);
}
