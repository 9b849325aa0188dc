namespace TrustedProxy.PrivacyTests.Privacy;

/// <summary>With the cache off, the attacks must succeed: otherwise they prove nothing about the cache.</summary>
public sealed class CacheOffTests
{
    private static readonly TimeSpan[] AttackerWindows = [TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(10), TimeSpan.FromHours(1)];

    [Fact]
    public async Task WriteThrough_SamePatientTemporalAttack_HasAucAbove09()
    {
        foreach (var options in new[] { SimulatedRuns.CacheOffPadme, SimulatedRuns.CacheOffFixedBlocks })
        {
            var run = await SimulatedRuns.Of(options);
            foreach (var window in AttackerWindows)
            {
                var pairs = run.Evaluation.PairsAt(window);
                Assert.True(pairs.Time.Auc > 0.9, $"{run.Evaluation.Configuration.Label}, W={window}: time AUC {pairs.Time.Auc:F3}");
                Assert.True(pairs.Time.BalancedAccuracy > 0.8, $"{run.Evaluation.Configuration.Label}, W={window}: balanced accuracy {pairs.Time.BalancedAccuracy:F3}");
            }
        }
    }

    [Fact]
    public async Task WriteThrough_UploadLinking_IsFarAboveChance()
    {
        var linking = (await SimulatedRuns.Of(SimulatedRuns.CacheOffFixedBlocks)).Evaluation.Linking;

        Assert.True(linking.FirstWriteAccuracy > 0.95, $"first-write accuracy {linking.FirstWriteAccuracy:P1}");
        Assert.True(linking.DensityAccuracy > 0.95, $"max-density accuracy {linking.DensityAccuracy:P1}");
        Assert.True(linking.Chance < 0.1, $"chance {linking.Chance:P1}");
    }

    [Fact]
    public async Task WriteThrough_BurstSize_IsReadOffTheWriteCount()
    {
        var burst = (await SimulatedRuns.Of(SimulatedRuns.CacheOffPadme)).Evaluation.BestBurst;

        Assert.True(burst.Auc > 0.8, $"burst AUC {burst.Auc:F3} at W={burst.Window}");
        Assert.True(burst.Correlation > 0.3, $"burst correlation {burst.Correlation:F2} at W={burst.Window}");
    }

    [Fact]
    public async Task WriteThrough_AnUploadHasNoAnonymity()
    {
        var anonymity = (await SimulatedRuns.Of(SimulatedRuns.CacheOffPadme)).Evaluation.Anonymity;

        Assert.True(anonymity.MeanBits < 1, $"mean entropy {anonymity.MeanBits:F2} bits");
    }

    [Fact]
    public async Task Padme_Alone_LeavesTheSizeAttackFarAboveChance()
    {
        var run = await SimulatedRuns.Of(SimulatedRuns.CacheOffPadme);

        foreach (var window in AttackerWindows)
        {
            var size = run.Evaluation.PairsAt(window).Size;
            Assert.True(size.Auc > 0.85, $"W={window}: size AUC {size.Auc:F3}");
        }
    }

    [Fact]
    public async Task FixedBlocks_TakeTheSizeSignalAwayEntirely()
    {
        var run = await SimulatedRuns.Of(SimulatedRuns.CacheOffFixedBlocks);

        Assert.All(run.Evaluation.Pairs, p =>
        {
            Assert.Equal(0.5, p.Size.Auc);
            Assert.Equal(0.5, p.Size.BalancedAccuracy);
        });
        Assert.Single(run.Log.Observations.Select(o => o.Length).Distinct());
    }

    [Fact]
    public async Task RandomNames_CarryNoPattern_EvenWithoutTheCache()
    {
        var run = await SimulatedRuns.Of(SimulatedRuns.CacheOffFixedBlocks);

        Assert.All(run.Evaluation.Pairs, p =>
        {
            Assert.InRange(p.NamePrefix.Auc, 0.48, 0.52);
            Assert.InRange(p.NameCloseness.Auc, 0.48, 0.52);
        });
    }
}
