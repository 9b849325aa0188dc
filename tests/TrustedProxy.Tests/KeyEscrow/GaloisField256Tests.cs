using TrustedProxy.KeyEscrow;

namespace TrustedProxy.Tests.KeyEscrow;

public sealed class GaloisField256Tests
{
    // FIPS 197, sections 4.2 and 4.2.1: {57}·{83} = {c1}, {57}·{13} = {fe}, and {53}, {ca} are inverses.
    [Theory]
    [InlineData(0x57, 0x83, 0xC1)]
    [InlineData(0x57, 0x13, 0xFE)]
    [InlineData(0x53, 0xCA, 0x01)]
    [InlineData(0x02, 0x80, 0x1B)]
    [InlineData(0x00, 0xFF, 0x00)]
    [InlineData(0x01, 0xA7, 0xA7)]
    public void Multiply_GivesTheAesStandardsProducts(int a, int b, int product)
    {
        Assert.Equal((byte)product, GaloisField256.Multiply((byte)a, (byte)b));
        Assert.Equal((byte)product, GaloisField256.Multiply((byte)b, (byte)a));
    }

    [Fact]
    public void Multiply_AgreesWithSchoolbookMultiplicationModuloTheAesPolynomial_ForEveryPair()
    {
        for (var a = 0; a < 256; a++)
        {
            for (var b = 0; b < 256; b++)
            {
                Assert.Equal(Schoolbook(a, b), GaloisField256.Multiply((byte)a, (byte)b));
            }
        }
    }

    [Fact]
    public void Inverse_OfEveryNonzeroElement_MultipliesToOne_AndZeroMapsToZero()
    {
        Assert.Equal(0xCA, GaloisField256.Inverse(0x53));
        Assert.Equal(0, GaloisField256.Inverse(0));
        for (var a = 1; a < 256; a++)
        {
            Assert.Equal(1, GaloisField256.Multiply((byte)a, GaloisField256.Inverse((byte)a)));
        }
    }

    // {03} generates the multiplicative group of AES's field: its powers run through all 255 nonzero
    // elements before returning to 1. A wrong reduction polynomial breaks this.
    [Fact]
    public void Three_GeneratesEveryNonzeroElement()
    {
        var seen = new HashSet<byte>();
        byte power = 1;
        for (var i = 0; i < 255; i++)
        {
            Assert.True(seen.Add(power), $"{{03}}^{i} repeats an earlier power");
            power = GaloisField256.Multiply(power, 3);
        }

        Assert.Equal(1, power);
        Assert.DoesNotContain((byte)0, seen);
    }

    [Fact]
    public void Multiply_DistributesOverAddition()
    {
        foreach (var c in new byte[] { 0x02, 0x53, 0xFF })
        {
            for (var a = 0; a < 256; a++)
            {
                for (var b = 0; b < 256; b++)
                {
                    Assert.Equal(
                        GaloisField256.Add(GaloisField256.Multiply((byte)a, c), GaloisField256.Multiply((byte)b, c)),
                        GaloisField256.Multiply(GaloisField256.Add((byte)a, (byte)b), c));
                }
            }
        }
    }

    // An independent reference: multiply as polynomials over GF(2), then reduce bit by bit from the top.
    private static byte Schoolbook(int a, int b)
    {
        var product = 0;
        for (var i = 0; i < 8; i++)
        {
            if (((b >> i) & 1) != 0)
            {
                product ^= a << i;
            }
        }

        for (var bit = 14; bit >= 8; bit--)
        {
            if (((product >> bit) & 1) != 0)
            {
                product ^= 0x11B << (bit - 8);
            }
        }

        return (byte)product;
    }
}
