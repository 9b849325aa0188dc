using System.Security.Cryptography;
using TrustedProxy.KeyEscrow;

namespace TrustedProxy.Tests.KeyEscrow;

public sealed class ShamirSecretSharingTests
{
    [Fact]
    public void EveryKSubset_OfEverySmallSplit_RecoversTheSecret_AndEveryLargerSubsetToo()
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        for (var n = 1; n <= 6; n++)
        {
            for (var k = 1; k <= n; k++)
            {
                var shares = ShamirSecretSharing.Split(secret, k, n);
                foreach (var subset in Subsets(n).Where(s => s.Length >= k))
                {
                    var recovered = ShamirSecretSharing.Combine([.. subset.Select(i => ((byte)(i + 1), shares[i]))]);
                    Assert.True(secret.AsSpan().SequenceEqual(recovered), $"{k} of {n}: shares {string.Join(",", subset.Select(i => i + 1))} do not recover the secret");
                }
            }
        }
    }

    [Fact]
    public void FewerThanKShares_GiveSomethingElse()
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        var shares = ShamirSecretSharing.Split(secret, 3, 5);

        foreach (var subset in Subsets(5).Where(s => s.Length == 2))
        {
            Assert.NotEqual(secret, ShamirSecretSharing.Combine([.. subset.Select(i => ((byte)(i + 1), shares[i]))]));
        }
    }

    [Fact]
    public void TwoSplitsOfOneSecret_DrawDifferentPolynomials_AndTheirSharesDoNotCombine()
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        var first = ShamirSecretSharing.Split(secret, 2, 3);
        var second = ShamirSecretSharing.Split(secret, 2, 3);

        Assert.NotEqual(first[0], second[0]);
        Assert.NotEqual(secret, ShamirSecretSharing.Combine([(1, first[0]), (2, second[1])]));
    }

    /// <summary>
    /// Perfect secrecy with k = 2, exhaustively on one-byte secrets: for every secret and every
    /// share x, the 256 choices of the random coefficient give each of the 256 share values exactly
    /// once. One share is then uniformly distributed whatever the secret: it is consistent with
    /// every secret, and equally so.
    /// </summary>
    [Fact]
    public void OneShareOfATwoOfThreeSplit_IsUniform_WhateverTheOneByteSecret()
    {
        for (var secret = 0; secret < 256; secret++)
        {
            var seen = new int[3, 256];
            for (var coefficient = 0; coefficient < 256; coefficient++)
            {
                var shares = ShamirSecretSharing.Split([(byte)secret], 2, 3, random => random[0] = (byte)coefficient);
                for (var x = 0; x < 3; x++)
                {
                    seen[x, shares[x][0]]++;
                }
            }

            for (var x = 0; x < 3; x++)
            {
                for (var y = 0; y < 256; y++)
                {
                    Assert.True(seen[x, y] == 1, $"secret {secret}: share {x + 1} takes the value {y} {seen[x, y]} times");
                }
            }
        }
    }

    /// <summary>
    /// The same with k = 3 for every pair of the five shares: for every one-byte secret, the 65,536
    /// coefficient pairs give each of the 65,536 pairs of share values exactly once. Each byte of
    /// the secret has its own coefficients, so one split of a 65,536-byte secret whose every byte is
    /// the secret under test, byte j drawing the coefficient pair j, runs all of them at once.
    /// </summary>
    [Fact]
    public void EveryTwoSharesOfAThreeOfFiveSplit_AreUniform_WhateverTheOneByteSecret()
    {
        const int pairs = 65536;
        var seen = new bool[pairs];
        for (var secret = 0; secret < 256; secret++)
        {
            var shares = ShamirSecretSharing.Split(Enumerable.Repeat((byte)secret, pairs).ToArray(), 3, 5, random =>
            {
                for (var j = 0; j < pairs; j++)
                {
                    random[2 * j] = (byte)j;
                    random[(2 * j) + 1] = (byte)(j >> 8);
                }
            });

            for (var a = 0; a < 5; a++)
            {
                for (var b = a + 1; b < 5; b++)
                {
                    Array.Clear(seen);
                    var distinct = 0;
                    for (var j = 0; j < pairs; j++)
                    {
                        var value = (shares[a][j] << 8) | shares[b][j];
                        distinct += seen[value] ? 0 : 1;
                        seen[value] = true;
                    }

                    Assert.True(distinct == pairs, $"secret {secret}: shares {a + 1} and {b + 1} take only {distinct} of the {pairs} value pairs");
                }
            }
        }
    }

    [Fact]
    public void Combine_RefusesTwoSharesAtOnePoint_AndThePointZero()
    {
        var shares = ShamirSecretSharing.Split(new byte[4], 2, 3);

        Assert.Throws<ArgumentException>(() => ShamirSecretSharing.Combine([(1, shares[0]), (1, shares[0])]));
        Assert.Throws<ArgumentException>(() => ShamirSecretSharing.Combine([(0, shares[0]), (1, shares[0])]));
    }

    [Theory]
    [InlineData(0, 3)]
    [InlineData(4, 3)]
    [InlineData(3, 256)]
    public void Split_RefusesImpossibleParameters(int threshold, int shares) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => ShamirSecretSharing.Split(new byte[4], threshold, shares));

    private static IEnumerable<int[]> Subsets(int n) =>
        Enumerable.Range(1, (1 << n) - 1).Select(mask => Enumerable.Range(0, n).Where(i => ((mask >> i) & 1) != 0).ToArray());
}
