using System.Security.Cryptography;
using TrustedProxy.Crypto;
using TrustedProxy.Storage;

namespace TrustedProxy.Tests.Crypto;

public sealed class ObjectMaskTests : IDisposable
{
    private readonly ObjectMask _mask = new(RandomNumberGenerator.GetBytes(32));

    [Fact]
    public void ADummy_IsTheSameBytesOnEveryPass_AsAnSdkHashingThenSendingReadsIt()
    {
        var name = ObjectName.NewRandom();
        using var dummy = _mask.Dummy(name, 131_072);

        var hashPass = SHA256.HashData(dummy);
        dummy.Position = 0;
        var sendPass = new byte[131_072];
        dummy.ReadExactly(sendPass);

        Assert.Equal(hashPass, SHA256.HashData(sendPass));
    }

    [Fact]
    public void ReadsAtAnyPositionAndInAnyChunking_AgreeWithOneWholeRead()
    {
        var name = ObjectName.NewRandom();
        var content = RandomNumberGenerator.GetBytes(10_000);
        var whole = ReadAll(_mask.Mask(name, new MemoryStream(content)));

        using var masked = _mask.Mask(name, new MemoryStream(content));
        foreach (var (position, count) in new[] { (0, 1), (1, 15), (17, 33), (4095, 4098), (9_999, 1), (5, 0) })
        {
            masked.Position = position;
            var part = new byte[count];
            masked.ReadExactly(part);
            Assert.Equal(whole.AsSpan(position, count).ToArray(), part);
        }
    }

    [Fact]
    public void Applying_RemovesTheMask_ForThatNameOnly()
    {
        var name = ObjectName.NewRandom();
        var content = RandomNumberGenerator.GetBytes(5_000);
        var stored = ReadAll(_mask.Mask(name, new MemoryStream(content)));
        Assert.NotEqual(content, stored);

        var other = stored.ToArray();
        _mask.Apply(ObjectName.NewRandom(), other);
        Assert.NotEqual(content, other);

        _mask.Apply(name, stored);
        Assert.Equal(content, stored);
    }

    [Fact]
    public void TheEnvelopeHeader_NoLongerShowsInWhatIsStored()
    {
        // 150 records' first objects all began "TPX" 01 00 01 00 00 before the mask.
        var header = "TPX\u0001\0\u0001\0\0"u8.ToArray();
        var prefixes = Enumerable.Range(0, 150)
            .Select(_ => ReadAll(_mask.Mask(ObjectName.NewRandom(), new MemoryStream(header.Concat(new byte[56]).ToArray())))[..4])
            .Select(Convert.ToHexString)
            .ToList();

        Assert.True(prefixes.GroupBy(p => p).Max(g => g.Count()) <= 2, "a 4-byte prefix repeats across masked objects");
    }

    [Fact]
    public void MaskedZeros_AreUniformBytes()
    {
        // Chi-square of byte counts over 1 MiB of dummies against uniform: 255 degrees of freedom,
        // 99.9th percentile about 330; a constant or structured stream lands in the millions.
        var counts = new long[256];
        for (var i = 0; i < 8; i++)
        {
            foreach (var b in ReadAll(_mask.Dummy(ObjectName.NewRandom(), 131_072)))
            {
                counts[b]++;
            }
        }

        var expected = 8 * 131_072 / 256.0;
        var chiSquare = counts.Sum(c => (c - expected) * (c - expected) / expected);
        Assert.InRange(chiSquare, 150, 330);
    }

    [Fact]
    public void TwoProxies_MaskTheSameNameDifferently()
    {
        using var other = new ObjectMask(RandomNumberGenerator.GetBytes(32));
        var name = ObjectName.NewRandom();

        Assert.NotEqual(ReadAll(_mask.Dummy(name, 64)), ReadAll(other.Dummy(name, 64)));
    }

    public void Dispose() => _mask.Dispose();

    private static byte[] ReadAll(Stream stream)
    {
        using (stream)
        {
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            return copy.ToArray();
        }
    }
}
