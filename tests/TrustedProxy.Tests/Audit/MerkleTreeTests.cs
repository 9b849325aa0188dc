using System.Security.Cryptography;
using TrustedProxy.Audit;

namespace TrustedProxy.Tests.Audit;

public sealed class MerkleTreeTests
{
    [Fact]
    public void TheIncrementalRoot_IsRfc6962sMerkleTreeHash_ForEverySizeUpTo70()
    {
        var entries = Enumerable.Range(0, 70).Select(i => SHA256.HashData([(byte)i])).ToList();
        var frontier = new MerkleFrontier();

        Assert.Equal(SHA256.HashData(ReadOnlySpan<byte>.Empty), frontier.Root());
        for (var n = 1; n <= entries.Count; n++)
        {
            frontier.Add(entries[n - 1]);
            Assert.Equal(Convert.ToHexString(Mth(entries.Take(n).ToList())), Convert.ToHexString(frontier.Root()));
        }
    }

    [Fact]
    public void LeavesAndNodes_AreDomainSeparated_SoALeafCannotPassForANode()
    {
        var left = SHA256.HashData([1]);
        var right = SHA256.HashData([2]);

        Assert.NotEqual(AuditHashes.Node(left, right), SHA256.HashData([.. left, .. right]));
        Assert.NotEqual(AuditHashes.Leaf(left), SHA256.HashData(left));
        Assert.Equal(SHA256.HashData([0x00, .. left]), AuditHashes.Leaf(left));
        Assert.Equal(SHA256.HashData([0x01, .. left, .. right]), AuditHashes.Node(left, right));
    }

    [Fact]
    public void AClone_GrowsIndependently()
    {
        var frontier = new MerkleFrontier();
        frontier.Add(SHA256.HashData([1]));
        var clone = frontier.Clone();
        clone.Add(SHA256.HashData([2]));

        Assert.Equal(1, frontier.Size);
        Assert.Equal(2, clone.Size);
        Assert.NotEqual(frontier.Root(), clone.Root());
    }

    // RFC 6962 section 2.1, written out as the RFC states it: split at the largest power of two below n.
    private static byte[] Mth(IReadOnlyList<byte[]> leaves)
    {
        if (leaves.Count == 1)
        {
            return SHA256.HashData([0x00, .. leaves[0]]);
        }

        var k = 1;
        while (k * 2 < leaves.Count)
        {
            k *= 2;
        }

        return SHA256.HashData([0x01, .. Mth(leaves.Take(k).ToList()), .. Mth(leaves.Skip(k).ToList())]);
    }
}
