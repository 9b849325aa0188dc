using TrustedProxy.UploadCache;

namespace TrustedProxy.PrivacyTests.Privacy;

/// <summary>What the write rate the cloud sees says about the upload rate, per schedule.</summary>
public sealed class ReleaseShapeTests
{
    [Fact]
    public async Task ConstantRate_WriteCountPerMinute_DoesNotFollowArrivals_AtAnyLag()
    {
        var run = await SimulatedRuns.Of(new UploadCacheOptions { Schedule = ConstantRateSchedule.ScheduleName });

        foreach (var lag in new[] { 0, 10, 60, 120 })
        {
            var r = LaggedCorrelation(run.Log, TimeSpan.FromMinutes(1), lag);
            Assert.True(Math.Abs(r) < 0.06, $"lag {lag} min: correlation {r:F3}");
        }
    }

    [Fact]
    public async Task ExponentialHold_WriteCount_FollowsArrivals_AMeanHoldLater()
    {
        var run = await SimulatedRuns.Of(SimulatedRuns.ExponentialHoldTenMinutes);

        var r = LaggedCorrelation(run.Log, TimeSpan.FromMinutes(10), lagWindows: 1);
        Assert.True(r > 0.5, $"correlation {r:F3}");
    }

    [Fact]
    public async Task ExponentialHold_WithoutCover_LosesToTheTemporalAttackWithinAnHour()
    {
        var evaluation = (await SimulatedRuns.Of(SimulatedRuns.ExponentialHoldTenMinutes)).Evaluation;

        Assert.True(evaluation.PairsAt(TimeSpan.FromHours(1)).Time.Auc > 0.7);
        Assert.True(evaluation.BestBurst.Auc > 0.55);
    }

    /// <summary>Correlation of real blocks arriving in window i with writes in window i + lag, over the arrival period.</summary>
    private static double LaggedCorrelation(SimulatedLog log, TimeSpan window, int lagWindows)
    {
        var count = (int)(log.Workload.Duration / window);
        var arrived = new double[count + lagWindows];
        var written = new double[count + lagWindows];
        foreach (var o in log.Objects.Values)
        {
            var i = (int)((o.ArrivedAt - log.Start) / window);
            if (i < arrived.Length)
            {
                arrived[i]++;
            }
        }

        foreach (var o in log.Observations)
        {
            var i = (int)((o.At - log.Start) / window);
            if (i < written.Length)
            {
                written[i]++;
            }
        }

        return Estimators.Pearson(arrived[..count], written[lagWindows..(count + lagWindows)]);
    }
}
