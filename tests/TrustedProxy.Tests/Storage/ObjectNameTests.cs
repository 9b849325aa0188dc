using TrustedProxy.Storage;

namespace TrustedProxy.Tests.Storage;

public sealed class ObjectNameTests
{
    [Fact]
    public void NewNames_Are128RandomBitsAsLowercaseHex()
    {
        var names = Enumerable.Range(0, 4096).Select(_ => ObjectName.NewRandom().ToString()).ToList();

        Assert.All(names, n => Assert.Matches("^[0-9a-f]{32}$", n));
        Assert.Equal(names.Count, names.Distinct().Count());

        // Every hex digit position is uniform: a chi-square test over 16 buckets per position.
        for (var position = 0; position < 32; position++)
        {
            var counts = new int[16];
            foreach (var name in names)
            {
                counts[Convert.ToInt32(name[position].ToString(), 16)]++;
            }

            var expected = names.Count / 16.0;
            var chiSquare = counts.Sum(c => (c - expected) * (c - expected) / expected);
            Assert.True(chiSquare < 50, $"position {position}: chi-square {chiSquare:F1} over 15 degrees of freedom");
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("0123456789ABCDEF0123456789abcdef")]
    [InlineData("0123456789abcdef0123456789abcde")]
    [InlineData("../etc/passwd0123456789abcdef012")]
    public void Parse_RefusesAnythingButTheCanonicalForm(string text) => Assert.False(ObjectName.TryParse(text, out _));
}
