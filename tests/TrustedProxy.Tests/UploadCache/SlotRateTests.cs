using System.Globalization;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Tests.UploadCache;

/// <summary>The slot rate a declared write load gives: the formula of docs/upload-cache.md, "Sizing".</summary>
public sealed class SlotRateTests
{
    [Fact]
    public void TheRate_IsTheHeadroomTimesTheDeclaredBlocksASecond_WithAFloor()
    {
        // 400 uploads of 100 MB a day: 40 GB, 3,532 blocks of 128 KiB an hour; three times that in slots.
        var rate = SlotRate.Derive(400, 100, 128 * 1024, backup: false);

        Assert.Equal(3 * 40e9 / (128 * 1024) / 86_400, rate, 9);
        Assert.Equal(120, SlotRate.GigabytesPerDay(rate, 128 * 1024), 6);
        Assert.Equal(SlotRate.MinSlotsPerSecond, SlotRate.Derive(0, 50, 128 * 1024, backup: false));

        // The backup's share: one more slot per declared block.
        Assert.Equal(160, SlotRate.GigabytesPerDay(SlotRate.Derive(400, 100, 128 * 1024, backup: true), 128 * 1024), 6);
        Assert.Equal(SlotRate.MinSlotsPerSecond, SlotRate.Derive(0, 50, 128 * 1024, backup: true));
    }

    [Fact]
    public void TheDefaultDeclaration_WritesAFewGigabytesADay_WithTheMeasuredTwoHourResidence()
    {
        var options = SlotRate.Apply(new UploadCacheOptions(), rateConfigured: false, thresholdConfigured: false, backup: true);
        var perDay = SlotRate.GigabytesPerDay(options.SlotsPerSecond, options.BlockSizeBytes);

        // The record's own 4 slots/s would be 45 GB a day.
        Assert.InRange(perDay, 0.5, 3);
        Assert.InRange(options.PoolThreshold / options.SlotsPerSecond, 7190, 7210);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"{perDay:0.##} GB a day written to the cloud"), SlotRate.Cost(options, rateConfigured: false, backup: true), StringComparison.Ordinal);
    }

    [Fact]
    public void AnExplicitRate_Wins_AndAnExplicitThresholdIsKeptWithADerivedRate()
    {
        var declared = new UploadCacheOptions { DeclaredUploadsPerDay = 400, DeclaredUploadMegabytes = 100, SlotsPerSecond = 0.5, PoolThreshold = 99 };

        var explicitRate = SlotRate.Apply(declared, rateConfigured: true, thresholdConfigured: false, backup: true);
        var explicitThreshold = SlotRate.Apply(declared, rateConfigured: false, thresholdConfigured: true, backup: false);

        Assert.Equal(0.5, explicitRate.SlotsPerSecond);
        Assert.Equal(99, explicitRate.PoolThreshold);
        Assert.Equal(SlotRate.Derive(400, 100, declared.BlockSizeBytes, backup: false), explicitThreshold.SlotsPerSecond);
        Assert.Equal(99, explicitThreshold.PoolThreshold);
        Assert.Contains("set by TrustedProxy:UploadCache:SlotsPerSecond", SlotRate.Cost(explicitRate, rateConfigured: true, backup: true), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1, 50, "--uploads-per-day must be between")]
    [InlineData(double.NaN, 50, "--uploads-per-day must be between")]
    [InlineData(10, 0, "--upload-megabytes must be between")]
    [InlineData(10_000_000, 1_000_000, "needs more than 100,000 slots/s")]
    public void ABadDeclaration_IsNamed(double uploads, double megabytes, string error)
    {
        Assert.Contains(SlotRate.Validate(uploads, megabytes, 128 * 1024, backup: true), e => e.Contains(error, StringComparison.Ordinal));
        Assert.Empty(SlotRate.Validate(10, 50, 128 * 1024, backup: true));
    }
}
