namespace TrustedProxy.PrivacyTests.Privacy;

public sealed class EstimatorTests
{
    [Fact]
    public void Auc_OfSeparatedScores_IsOne_AndReversedZero()
    {
        Assert.Equal(1.0, Estimators.Auc([3, 4, 5], [0, 1, 2]));
        Assert.Equal(0.0, Estimators.Auc([0, 1, 2], [3, 4, 5]));
    }

    [Fact]
    public void Auc_CountsTiesAsHalf()
    {
        // Pairs (p, n): (1,0) win, (1,2) loss, (2,0) win, (2,2) tie, (3,0) win, (3,2) win: 4.5 of 6.
        Assert.Equal(0.75, Estimators.Auc([1, 2, 3], [0, 2]));
        Assert.Equal(0.5, Estimators.Auc([7, 7, 7], [7, 7]));
    }

    [Fact]
    public void Auc_AgreesWithCountingEveryPair()
    {
        var random = new Random(3);
        var positives = Enumerable.Range(0, 300).Select(_ => (double)random.Next(20)).ToList();
        var negatives = Enumerable.Range(0, 200).Select(_ => (double)random.Next(15)).ToList();

        double wins = 0;
        foreach (var p in positives)
        {
            foreach (var n in negatives)
            {
                wins += p > n ? 1 : p == n ? 0.5 : 0;
            }
        }

        Assert.Equal(wins / (positives.Count * negatives.Count), Estimators.Auc(positives, negatives), 12);
    }

    [Fact]
    public void Auc_OfAnEmptyClass_IsUndefined() => Assert.True(double.IsNaN(Estimators.Auc([1], [])));

    [Fact]
    public void BestBalancedAccuracy_FindsTheBestThreshold_InEitherDirection()
    {
        Assert.Equal(1.0, Estimators.BestBalancedAccuracy([3, 4, 5], [0, 1, 2]));
        Assert.Equal(1.0, Estimators.BestBalancedAccuracy([0, 1, 2], [3, 4, 5]));

        // Threshold between 1 and 2: TPR 3/4, FPR 1/4, so (3/4 + 3/4) / 2.
        Assert.Equal(0.75, Estimators.BestBalancedAccuracy([0, 2, 3, 4], [-1, -2, 1, 5]));
    }

    [Fact]
    public void BestBalancedAccuracy_CannotSplitTies() => Assert.Equal(0.5, Estimators.BestBalancedAccuracy([1, 1, 1], [1, 1]));

    [Fact]
    public void Entropy_OfUniformWeights_IsLog2OfTheirNumber_AtAnyScale()
    {
        Assert.Equal(6.0, Estimators.Entropy(Enumerable.Repeat(1.0, 64)), 12);
        Assert.Equal(6.0, Estimators.Entropy(Enumerable.Repeat(1e-7, 64)), 12);
    }

    [Fact]
    public void Entropy_OfKnownDistributions()
    {
        Assert.Equal(1.5, Estimators.Entropy([1, 1, 2]), 12);
        Assert.Equal(0.0, Estimators.Entropy([0, 5, 0]), 12);
        Assert.Equal(-(0.9 * Math.Log2(0.9) + 0.1 * Math.Log2(0.1)), Estimators.Entropy([9, 1]), 12);
    }

    [Fact]
    public void Entropy_RefusesNegativeOrNoMass()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Estimators.Entropy([1, -1]));
        Assert.Throws<InvalidOperationException>(() => Estimators.Entropy([0, 0]));
    }

    [Fact]
    public void Pearson_OfKnownSeries()
    {
        Assert.Equal(1.0, Estimators.Pearson([1, 2, 3], [2, 4, 6]), 12);
        Assert.Equal(-1.0, Estimators.Pearson([1, 2, 3], [3, 2, 1]), 12);
        Assert.Equal(0.0, Estimators.Pearson([1, 2, 3, 4], [1, -1, -1, 1]), 12);
        Assert.True(double.IsNaN(Estimators.Pearson([1, 1, 1], [1, 2, 3])));
    }

    [Fact]
    public void DelayDensity_IntegratesToOne_AndIsZeroOutsideWhatWasSeen()
    {
        var random = new Random(5);
        var delays = new DelayDistribution(Enumerable.Range(0, 100_000).Select(_ => -Math.Log(1 - random.NextDouble()) * 60));

        var integral = 0.0;
        for (var t = 0.0; t < delays.Max + 1; t += 0.05)
        {
            integral += delays.Density(t) * 0.05;
        }

        Assert.InRange(integral, 0.99, 1.01);
        Assert.InRange(delays.Mean, 59, 61);
        Assert.Equal(0, delays.Density(-1));
        Assert.Equal(0, delays.Density(delays.Max + 1));

        // An exponential's density halves every mean·ln 2.
        Assert.InRange(delays.Density(60 * Math.Log(2)) / delays.Density(0.1), 0.45, 0.55);
    }
}
