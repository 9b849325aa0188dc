using System.Globalization;
using TrustedProxy.Testing.Privacy.Wire;
using Xunit.Abstractions;

namespace TrustedProxy.PrivacyTests.Privacy;

/// <summary>
/// Two wire runs with one seed, side by side: the defaults with the backup off (as in
/// <see cref="WireTests"/>) and the same with the production backup on
/// (<see cref="WireRunOptions.ScaledBackup"/>: a generation every five virtual minutes, increments
/// checked every 5 s), its objects shipped in the dummy slots.
/// </summary>
public sealed class WireBackupRuns
{
    private readonly Task<WireRunResult> _off = Task.Run(() => WireRun.RunAsync(new WireRunOptions()));
    private readonly Task<WireRunResult> _on = Task.Run(() => WireRun.RunAsync(new WireRunOptions { Backup = WireRunOptions.ScaledBackup }));

    public Task<WireRunResult> Off => _off;

    public Task<WireRunResult> On => _on;
}

/// <summary>
/// Issue 14 on the wire: with the backup on, the cloud must learn nothing it does not learn with it
/// off. Backup objects replace the contents and names of dummies in their slots, so every wire
/// classifier of real against cover stays within the bounds the defaults meet (0.45–0.55); the put
/// times and sizes are those of the run without the backup; and a backup object cannot be told from
/// a dummy that carried dummy bytes. Figures and the command: docs/privacy-wire.md, "With the backup on".
/// </summary>
[Collection(WireCollection.Name)]
public sealed class WireBackupTests(WireBackupRuns runs, ITestOutputHelper output) : IClassFixture<WireBackupRuns>
{
    private const double ChanceLow = 0.45;
    private const double ChanceHigh = 0.55;

    /// <summary>Less than this share of cover writes carrying the backup and the run would prove little.</summary>
    private const double MinimumBackupShare = 0.2;

    public static TheoryData<string> Classifiers => new(WireTests.ClassifierNames);

    [Fact]
    public async Task TheBackup_TakesAFifthOfTheCoverSlotsOrMore_InSeveralGenerationsAndManyIncrements_AndTheFrontAcceptsEveryWrite()
    {
        var run = await runs.On;
        var objects = WireObject.FromRequests(run.Requests);
        var cover = objects.Where(o => run.Kinds.GetValueOrDefault(o.Name) is "Dummy" or "Retired").ToList();
        var backup = cover.Count(o => run.CoverPayloads.Contains(o.Name));
        var refused = objects.Where(o => o.Write.Status is < 200 or >= 300).ToList();
        var summary = run.Backup!;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{objects.Count} objects: {objects.Count - cover.Count} real, {cover.Count} cover of which {backup} backup objects ({(double)backup / cover.Count:P1}); {summary}; {refused.Count} writes refused, {run.EngineErrors} failed steps, {run.WallTime.TotalSeconds:F1} s"));

        Assert.True((double)backup / cover.Count > MinimumBackupShare, $"only {backup} of {cover.Count} cover writes carried the backup");
        Assert.True(summary.NewestComplete >= 1, $"fewer than two generations completed: {summary}");
        Assert.True(summary.IncrementObjects.Count >= 5, $"too few increments: {summary}");

        // Every object the run wrote is known to the truth (a backup object missing from it would be left out of every AUC).
        Assert.All(objects, o => Assert.Contains(o.Name, (IReadOnlyDictionary<string, string>)run.Kinds));
        Assert.Empty(refused.Select(o => $"{run.Kinds.GetValueOrDefault(o.Name)} {o.Name}: {o.Write.Status}"));
        Assert.Equal(0, run.EngineErrors);
    }

    [Fact]
    public async Task WithTheBackupOn_TheCloudSeesTheSameRequestsAtTheSameTimes_OfTheSameSizes_AndTheRealBlocksInTheSameSlots()
    {
        var (off, on) = (await runs.Off, await runs.On);

        // Method, virtual time and body length of every request, in order: the schedule is the seed's, whatever the slots carry.
        static List<(string, DateTimeOffset, long)> Shape(WireRunResult run) => run.Requests.Select(r => (r.Method, r.At, r.BodyLength)).ToList();
        static List<DateTimeOffset> RealSlots(WireRunResult run) => run.Requests.Where(r => r.Key is not null && run.Kinds.GetValueOrDefault(r.Key) == "Real").Select(r => r.At).ToList();
        output.WriteLine($"{off.Requests.Count} requests off, {on.Requests.Count} on; {RealSlots(off).Count} real writes off, {RealSlots(on).Count} on");

        Assert.Equal(Shape(off), Shape(on));
        Assert.Equal(RealSlots(off), RealSlots(on));
    }

    [Theory]
    [MemberData(nameof(Classifiers))]
    public async Task Classifier_WithTheBackupOn_CannotTellRealFromCover(string classifier)
    {
        var (off, on) = (await runs.Off, await runs.On);
        var withBackup = WireClassifiers.All(WireObject.FromRequests(on.Requests), on.Kinds).Single(r => r.Name == classifier);
        var without = WireClassifiers.All(WireObject.FromRequests(off.Requests), off.Kinds).Single(r => r.Name == classifier);
        output.WriteLine("backup on:  " + withBackup);
        output.WriteLine("backup off: " + without);
        Assert.InRange(withBackup.Auc, ChanceLow, ChanceHigh);
    }

    [Theory]
    [MemberData(nameof(Classifiers))]
    public async Task Classifier_CannotTellABackupObjectFromADummy(string classifier)
    {
        var (off, on) = (await runs.Off, await runs.On);

        // The backup takes nearly every dummy slot of the run with it on, which leaves too few dummies
        // there to compare with; the run with it off wrote a dummy in each of those slots, with the
        // same seed, code and headers. So: the backup objects of the one against the dummies of the other.
        var (objects, kinds) = BackupAgainstDummies(off, on);
        var result = WireClassifiers.All(objects, kinds).Single(r => r.Name == classifier);

        // Chance with these counts: within 4 standard errors of 0.5, and never tighter than the defaults' ±0.05.
        var bound = Math.Max(0.05, 4 * StandardErrorAtChance(result.Real, result.Cover));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"backup objects (as 'real') against dummies: {result}; bound ±{bound:F3}"));
        Assert.InRange(result.Auc, 0.5 - bound, 0.5 + bound);
    }

    [Fact]
    public async Task Survival_WithTheBackupOn_CannotTellRealFromCover_NorBackupFromDummy()
    {
        var (off, on) = (await runs.Off, await runs.On);
        var objects = WireObject.FromRequests(on.Requests);
        var real = WireClassifiers.Survival(objects, on.Kinds);
        var (pooled, kinds) = BackupAgainstDummies(off, on);
        var backup = WireClassifiers.Survival(pooled, kinds);
        output.WriteLine($"real against cover: {real}; backup objects against dummies: {backup}; {objects.Count(o => !o.Survives)} deleted");

        // Nothing is deleted at the defaults (dummies kept for good, which the backup requires), backup objects included.
        Assert.InRange(real.Auc, ChanceLow, ChanceHigh);
        Assert.InRange(backup.Auc, ChanceLow, ChanceHigh);
        Assert.All(objects, o => Assert.True(o.Survives));
    }

    [Fact]
    public async Task LogAttacks_WithTheBackupOn_LearnExactlyWhatTheyLearnWithItOff()
    {
        var off = SurvivorAttacks.Run(await runs.Off);
        var on = SurvivorAttacks.Run(await runs.On);
        foreach (var (what, r) in new[] { ("backup off", off), ("backup on", on) })
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{what}: {r.Survivors} of {r.Written} survive; burst r (AUC) {string.Join(" / ", r.Burst.Select(b => $"{b.Correlation:F2} ({b.Auc:F3})"))}; linking first {r.Linking.FirstWriteAccuracy:P1}, density {r.Linking.DensityAccuracy:P1}, chance {r.Linking.Chance:P2}"));
        }

        // The log (times, sizes, operations) is the same with the backup on, so the attacks on it give the same figures.
        Assert.Equal((off.Survivors, off.Written), (on.Survivors, on.Written));
        Assert.Equal(off.Burst.Select(b => (b.Correlation, b.Auc)), on.Burst.Select(b => (b.Correlation, b.Auc)));
        Assert.Equal((off.Linking.FirstWriteAccuracy, off.Linking.DensityAccuracy, off.Linking.Chance), (on.Linking.FirstWriteAccuracy, on.Linking.DensityAccuracy, on.Linking.Chance));
    }

    /// <summary>
    /// The backup objects written with the backup on (labelled "Real", the positive kind) and the
    /// dummies written with it off. The <c>host</c> header is left out: it names each run's own tap
    /// (its port), constant within a run, so it would tell the runs apart, not the kinds.
    /// </summary>
    private static (IReadOnlyList<WireObject> Objects, IReadOnlyDictionary<string, string> Kinds) BackupAgainstDummies(WireRunResult off, WireRunResult on)
    {
        static WireObject WithoutHost(WireObject o) => new(o.Name, [.. o.UpToWrite.Select(WithoutHostHeader)], [.. o.Later.Select(WithoutHostHeader)]);
        static TappedRequest WithoutHostHeader(TappedRequest r) => r with { Headers = [.. r.Headers.Where(h => h.Key != "host")] };
        var backup = WireObject.FromRequests(on.Requests).Where(o => on.CoverPayloads.Contains(o.Name)).Select(WithoutHost).ToList();
        var dummies = WireObject.FromRequests(off.Requests).Where(o => off.Kinds.GetValueOrDefault(o.Name) == "Dummy").Select(WithoutHost).ToList();
        var kinds = backup.Select(o => KeyValuePair.Create(o.Name, "Real")).Concat(dummies.Select(o => KeyValuePair.Create(o.Name, "Dummy"))).ToDictionary();
        return ([.. backup, .. dummies], kinds);
    }

    // The Mann–Whitney AUC's standard error when the two kinds are alike (as in WireReadTests).
    private static double StandardErrorAtChance(int positives, int negatives) => Math.Sqrt((positives + negatives + 1) / (12.0 * positives * negatives));
}
