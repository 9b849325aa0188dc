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

    /// <summary>
    /// Issue 21: an insider who knows when requests were made cannot link two requests for one
    /// record, or one patient, by what the cloud saw after them: shared objects, the volume read, a
    /// later request reading objects written after an earlier one, nor a request to its record's
    /// upload. Each signal at every window within four standard errors of chance (at least ±0.05).
    /// </summary>
    [Fact]
    public async Task AtTheDefaults_EveryRequestLinkingSignal_IsAtChance()
    {
        var defaults = await Of(new UploadCacheOptions(), RetrievalConfiguration.Defaults);

        Assert.All(defaults.Windows.SelectMany(w => w.All.Select(s => (w.Window, Signal: s))), p =>
            Assert.True(p.Signal.AtChance, $"W={p.Window}, {p.Signal.Name}: AUC {p.Signal.Auc:F3} (bound ±{p.Signal.ChanceBound:F3}), balanced accuracy {p.Signal.BalancedAccuracy:F3}"));
    }

    /// <summary>
    /// The harness's own fairness: negatives matched to the positives' gaps must sit among as many
    /// other requests as the positives do, or counting reads in a window (volume) would score the
    /// matching, not the proxy; and they must come as early in the log as the positives, or the
    /// store's growth (small early, so every window's reads overlap more) would score as overlap.
    /// Checked on the request times alone, which the proxy does not touch.
    /// </summary>
    [Fact]
    public async Task TheNegatives_AreMatchedFairly_TheRequestsAroundThemAreAtChance()
    {
        var defaults = await Of(new UploadCacheOptions(), RetrievalConfiguration.Defaults);

        Assert.All(defaults.Windows, w => Assert.True(w.RequestDensity.AtChance, $"W={w.Window}: request density AUC {w.RequestDensity.Auc:F3}"));
        Assert.All(defaults.Windows, w => Assert.True(w.FirstRequestTime.AtChance, $"W={w.Window}: first request time AUC {w.FirstRequestTime.Auc:F3}"));
    }

    /// <summary>
    /// The control of the stream floor: without it the stream after a request has the request's size
    /// class, and two requests for one record (both for its study, or both for it alone) are linked
    /// by it within seconds.
    /// </summary>
    [Fact]
    public async Task WithoutTheStreamFloor_VolumeLinksRequestsWithinSeconds()
    {
        var off = await Of(new UploadCacheOptions(), RetrievalConfiguration.Defaults with { StreamFloorMegabytes = 0 });
        var on = await Of(new UploadCacheOptions(), RetrievalConfiguration.Defaults);

        double Volume(RetrievalEvaluation e) => e.Windows.MinBy(w => w.Window)!.SameRecord.Single(s => s.Name == "volume").Auc;
        // Measured without the floor: 0.578–0.619 over seeds and harness versions; with it 0.53–0.58.
        Assert.True(Volume(off) > 0.57, $"volume AUC without the floor {Volume(off):F3}");
        Assert.True(Volume(off) > Volume(on), $"volume AUC {Volume(off):F3} without the floor, {Volume(on):F3} with");
    }

    /// <summary>
    /// The control of relocation's hold: a record read from the cloud moves at once, so its new
    /// objects are written a schedule delay after the read, and a later request that reads them is
    /// linked to the earlier one by that delay. (The control this replaced, local reads starting no
    /// stream, measured 0.623 only while negatives were matched with a length bias; matched fairly it
    /// is 0.544, within chance, and local streams stay on for what they hide from the cloud alone.)
    /// </summary>
    [Fact]
    public async Task WithoutTheRelocationHold_RelocationLinksRequests()
    {
        var off = await Of(new UploadCacheOptions(), RetrievalConfiguration.Defaults with { RelocationHoldHours = 0 });

        var relocation = off.Windows.SelectMany(w => w.SameRecord).Where(s => s.Name == "relocation").MaxBy(s => s.Auc)!;
        Assert.False(relocation.AtChance, $"relocation AUC without the hold {relocation.Auc:F3} (bound ±{relocation.ChanceBound:F3})");
    }

    private static Task<RetrievalEvaluation> Of(UploadCacheOptions uploads, RetrievalConfiguration retrieval) =>
        Runs.GetOrAdd((uploads, retrieval), key => new Lazy<Task<RetrievalEvaluation>>(() => Task.Run(async () =>
        {
            var log = (await SimulatedRuns.Of(key.Item1)).Log;
            return RetrievalHarness.Evaluate(log, Consumers, key.Item2, RequestLinkingAttack.DefaultWindows, pairsPerClass: 1000, seed: 1);
        }))).Value;
}
