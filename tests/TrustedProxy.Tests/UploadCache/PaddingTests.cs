using TrustedProxy.UploadCache;

namespace TrustedProxy.Tests.UploadCache;

public sealed class PaddingTests
{
    [Theory]
    [InlineData(1000, 1024)]
    [InlineData(12345, 12800)]
    [InlineData(1024, 1024)]
    [InlineData(524_320, 540_672)]
    public void Padme_RoundsUpToTheSchemesSizeClasses(long length, long padded) => Assert.Equal(padded, PadmePadding.Pad(length));

    [Fact]
    public void Padme_OverheadStaysUnderTwelvePercent_AndNeverShrinks()
    {
        var random = new Random(7);
        for (var i = 0; i < 100_000; i++)
        {
            var length = (long)Math.Exp(random.NextDouble() * Math.Log(1L << 36)) + 1;
            var padded = PadmePadding.Pad(length);
            Assert.True(padded >= length);
            Assert.True(padded <= length * 1.12 + 2, $"{length} padded to {padded}");
        }
    }

    [Fact]
    public void Padme_LeavesFewSizeClasses()
    {
        var classes = Enumerable.Range(500_000, 50_000).Select(l => PadmePadding.Pad(l)).Distinct().Count();
        Assert.True(classes <= 5, $"{classes} classes for 50,000 neighbouring lengths");
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(1000, 1024, 1)]
    [InlineData(1025, 2048, 1)]
    public void PowerOfTwo_PadsToTheNextPower(long length, long padded, int count) =>
        Assert.Equal(new BlockLayout(padded, count), new PowerOfTwoPadding().Layout(length));

    [Theory]
    [InlineData(1, 1)]
    [InlineData(131_072, 1)]
    [InlineData(131_073, 2)]
    [InlineData(10 * 131_072, 10)]
    public void FixedBlocks_CutsIntoEqualBlocks_TheLastPadded(long length, int count)
    {
        var layout = new FixedBlockPadding(131_072).Layout(length);

        Assert.Equal(131_072, layout.Length);
        Assert.Equal(count, layout.Count);
        Assert.True(layout.StoredLength >= length && layout.StoredLength - length < 131_072);
    }

    [Fact]
    public void Dummies_UnderFixedBlocks_HaveTheBlockSize() => Assert.Equal(65536, new FixedBlockPadding(65536).DummyLength(999));

    [Fact]
    public void UnknownScheme_IsRefusedByNameAtStartUp()
    {
        var errors = new UploadCacheOptions { Padding = "zip" }.Validate().ToList();

        Assert.Contains(errors, e => e.Contains("'zip'", StringComparison.Ordinal) && e.Contains("fixed-blocks", StringComparison.Ordinal));
    }

    [Fact]
    public void ContradictoryHoldTimes_AreRefusedAtStartUp()
    {
        var errors = new UploadCacheOptions { MinHoldSeconds = 10, MeanHoldSeconds = 5, MaxHoldSeconds = 100, AlarmAfterSeconds = 50 }.Validate().ToList();

        Assert.Equal(2, errors.Count);
    }
}
