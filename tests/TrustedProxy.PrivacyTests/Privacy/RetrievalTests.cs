using System.Collections.Concurrent;
using TrustedProxy.UploadCache;

namespace TrustedProxy.PrivacyTests.Privacy;

/// <summary>
/// The request-side attacks on reads (issue 5), over the shared four-day upload logs: against
/// direct reads they must succeed (otherwise they prove nothing); against the defaults the
/// intersection attack must fail and the read log must add next to nothing.
/// </summary>
public sealed class RetrievalTests
{
    private static readonly RetrievalWorkloadOptions Consumers = new() { Seed = 3 };

    private static readonly ConcurrentDictionary<(UploadCacheOptions, RetrievalConfiguration), Lazy<Task<RetrievalEvaluation>>> Runs = new();

    [Fact]
    public async Task DirectReads_LinkTwoRequestsForOneRecord_AndAReadToItsUpload_AndWinTheIntersectionAttack()
    {
        var direct = await Of(new UploadCacheOptions { Enabled = false }, new RetrievalConfiguration(ReadMode.Direct));

        var sameRecord = direct.Windows.Max(w => w.SameRecord.Single(s => s.Name == "overlap").Auc);
        var readToUpload = direct.Windows.Max(w => w.ReadToUpload.Auc);
        Assert.True(sameRecord > 0.95, $"same-record overlap AUC {sameRecord:F3}");
        Assert.True(readToUpload > 0.95, $"read-to-upload AUC {readToUpload:F3}");
        Assert.True(direct.BestIntersection.Success > 0.99, $"intersection success {direct.BestIntersection.Success:P0}");
    }

    [Fact]
    public async Task AtTheDefaults_TheIntersectionAttackOverAHundredRequestsForOneRecord_Fails()
    {
        var defaults = await Of(new UploadCacheOptions(), RetrievalConfiguration.Defaults);

        Assert.All(defaults.Intersection, i =>
        {
            Assert.True(i.Success <= i.Chance + 0.05, $"W={i.Window}: success {i.Success:P1} against chance {i.Chance:P1}");
            Assert.True(i.RecordFrequency <= i.OtherFrequency, $"W={i.Window}: the record's objects were read in {i.RecordFrequency} of 100 windows, the most read other object in {i.OtherFrequency}");
        });
    }

    [Fact]
    public async Task WithoutRelocation_RepeatedRequestsReadTheSameObjects_AndTheIntersectionFindsThem()
    {
        // The control of the intersection attack: what relocation defends against.
        var unmoved = await Of(new UploadCacheOptions(), RetrievalConfiguration.Defaults with { Relocate = false });

        var best = unmoved.Intersection.MaxBy(i => i.Success - i.Chance)!;
        Assert.True(best.RecordFrequency > best.OtherFrequency, $"W={best.Window}: record {best.RecordFrequency}, other {best.OtherFrequency}");
        Assert.True(best.Success > 0.5, $"success {best.Success:P0} against chance {best.Chance:P1}");
    }

    [Fact]
    public async Task AtTheDefaults_OverlapAndReadToUploadLinking_AreWithinFivePointsOfChance()
    {
        var defaults = await Of(new UploadCacheOptions(), RetrievalConfiguration.Defaults);

        foreach (var window in defaults.Windows)
        {
            foreach (var signal in window.All.Where(s => s.Name is not ("volume" or "relocation")))
            {
                var nearChance = Math.Abs(signal.Auc - 0.5) <= 0.05 || signal.BalancedAccuracy <= 0.55;
                Assert.True(nearChance, $"W={window.Window}, {signal.Name}: AUC {signal.Auc:F3}, balanced accuracy {signal.BalancedAccuracy:F3}");
            }
        }
    }

    /// <summary>
    /// The harness's own fairness: negatives matched to the positives' gaps must sit among as many
    /// other requests as the positives do, or counting reads in a window (volume) would score the
    /// matching, not the proxy. Checked on the request times alone, which the proxy does not touch.
    /// </summary>
    [Fact]
    public async Task TheNegatives_AreMatchedFairly_TheRequestsAroundThemAreAtChance()
    {
        var defaults = await Of(new UploadCacheOptions(), RetrievalConfiguration.Defaults);

        Assert.All(defaults.Windows, w => Assert.True(Math.Abs(w.RequestDensity.Auc - 0.5) <= 0.03, $"W={w.Window}: request density AUC {w.RequestDensity.Auc:F3}"));
    }

    /// <summary>
    /// Not at chance yet (issue 21 stays open on it; docs/privacy.md, "Retrieval"). Volume: an
    /// attacker who knows when a request was made sees the size class of the stream that follows
    /// it; two requests that share a record are more often both whole-study requests than two
    /// requests at random, so equal classes link them a little. Relocation: a later request reads
    /// objects written after the earlier one. Measured at the time of writing (96 h, seed 1): volume
    /// 0.586 and relocation 0.540 at 10 s, at chance from 10 minutes on. The bound is a guard against
    /// their growing, not a claim that they are harmless.
    /// </summary>
    [Fact]
    public async Task AtTheDefaults_VolumeAndRelocationLinking_StayWithinTheirMeasuredBound()
    {
        var defaults = await Of(new UploadCacheOptions(), RetrievalConfiguration.Defaults);

        foreach (var window in defaults.Windows)
        {
            foreach (var signal in window.SameRecord.Concat(window.SamePatient).Where(s => s.Name is "volume" or "relocation"))
            {
                Assert.True(Math.Abs(signal.Auc - 0.5) <= 0.1 || signal.BalancedAccuracy <= 0.57, $"W={window.Window}, {signal.Name}: AUC {signal.Auc:F3}, balanced accuracy {signal.BalancedAccuracy:F3}");
            }
        }
    }

    /// <summary>
    /// The control of the stream a local read starts: without it, no stream follows a request served
    /// from the cache, which shows that its record was local (just uploaded, or just read and moved),
    /// and its next request reads objects written after it.
    /// </summary>
    [Fact]
    public async Task WithoutAStreamForLocalReads_RelocationLinksRequestsWithinSeconds()
    {
        var off = await Of(new UploadCacheOptions(), RetrievalConfiguration.Defaults with { LocalStreams = false });
        var on = await Of(new UploadCacheOptions(), RetrievalConfiguration.Defaults);

        double Relocation(RetrievalEvaluation e) => e.Windows.MinBy(w => w.Window)!.SameRecord.Single(s => s.Name == "relocation").Auc;
        Assert.True(Relocation(off) > 0.58, $"relocation AUC without local streams {Relocation(off):F3}");
        Assert.True(Relocation(off) - Relocation(on) > 0.04, $"relocation AUC {Relocation(off):F3} without local streams, {Relocation(on):F3} with");
    }

    private static Task<RetrievalEvaluation> Of(UploadCacheOptions uploads, RetrievalConfiguration retrieval) =>
        Runs.GetOrAdd((uploads, retrieval), key => new Lazy<Task<RetrievalEvaluation>>(() => Task.Run(async () =>
        {
            var log = (await SimulatedRuns.Of(key.Item1)).Log;
            return RetrievalHarness.Evaluate(log, Consumers, key.Item2, RequestLinkingAttack.DefaultWindows, pairsPerClass: 1000, seed: 1);
        }))).Value;
}
