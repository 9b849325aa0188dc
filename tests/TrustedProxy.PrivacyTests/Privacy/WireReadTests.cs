using System.Globalization;
using TrustedProxy.Testing.Privacy.Wire;
using Xunit.Abstractions;

namespace TrustedProxy.PrivacyTests.Privacy;

/// <summary>
/// The two read runs (about 25 s each, started together): ten virtual minutes of writes at the
/// defaults, then 250 records fetched through the production group reader on its constant-rate loop;
/// once as the production code does it, once by a proxy that reads a wanted group differently (a HEAD
/// before each of its members, and a header of its own on the wanted member's GET).
/// </summary>
public sealed class WireReadRuns
{
    public const int WantedReads = 250;

    private readonly Task<WireRunResult> _defaults = Task.Run(() => WireRun.RunAsync(new WireRunOptions { Duration = TimeSpan.FromMinutes(10), WantedReads = WantedReads }));
    private readonly Task<WireRunResult> _leaky = Task.Run(() => WireRun.RunAsync(new WireRunOptions
    {
        Duration = TimeSpan.FromMinutes(10),
        WantedReads = WantedReads,
        ReadControl = WireReadControl.HeadBeforeWanted | WireReadControl.ExtraHeaderOnWanted,
    }));

    public Task<WireRunResult> Defaults => _defaults;

    public Task<WireRunResult> Leaky => _leaky;
}

/// <summary>
/// Issue 20, read side: can the cloud tell a group read that serves a request from a cover group
/// read, by what it receives? Each slot of the group-read loop is scored by one observable; wanted
/// slots are the positives. There are fewer slots than writes (a few hundred of each kind), so chance
/// is asserted as |AUC − 0.5| ≤ max(0.05, 4 standard errors of an AUC at chance); against the leaky
/// proxy each observable must separate (max(AUC, 1 − AUC) ≥ 0.9; wall-clock duration ≥ 0.75, as other processes blur it). The age of what is read is
/// reported without a control. Figures: docs/privacy-wire.md.
/// </summary>
[Collection(WireCollection.Name)]
public sealed class WireReadTests(WireReadRuns runs, ITestOutputHelper output) : IClassFixture<WireReadRuns>
{
    public static readonly string[] ClassifierNames =
    [
        "group read: requests",
        "group read: verb sequence",
        "group read: header name set",
        "group read: header values (worst header)",
        "group read: duration (wall clock)",
    ];

    public static TheoryData<string> Classifiers => new(ClassifierNames);

    [Fact]
    public async Task ReadClassifiers_ListedHere_AreEveryReadClassifierOfTheHarness()
    {
        var run = await runs.Defaults;
        Assert.Equal(WireReadClassifiers.All(run.Requests, run.ReadSlots).Select(r => r.Name).Order(), ClassifierNames.Order());
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{run.ReadSlots.Count} slots, {run.ReadSlots.Count(s => s.Wanted)} wanted, {run.WallTime.TotalSeconds:F1} s"));
        Assert.True(run.ReadSlots.Count(s => s.Wanted) >= WireReadRuns.WantedReads, "every request is served by at least one wanted slot");
    }

    [Theory]
    [MemberData(nameof(Classifiers))]
    public async Task ReadClassifier_AtTheDefaults_CannotTellWantedFromCover(string classifier)
    {
        var run = await runs.Defaults;
        var result = WireReadClassifiers.All(run.Requests, run.ReadSlots).Single(r => r.Name == classifier);
        var bound = Math.Max(0.05, 4 * StandardError(result.Real, result.Cover));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"defaults: {result} (bound ±{bound:F3})"));
        Assert.InRange(result.Auc, 0.5 - bound, 0.5 + bound);
    }

    [Theory]
    [MemberData(nameof(Classifiers))]
    public async Task ReadClassifier_AgainstAProxyThatReadsWantedGroupsDifferently_TellsWantedFromCover(string classifier)
    {
        var run = await runs.Leaky;
        var result = WireReadClassifiers.All(run.Requests, run.ReadSlots).Single(r => r.Name == classifier);
        output.WriteLine("leaky control: " + result);

        // What the requests show separates completely. Wall-clock time is blurred by whatever else
        // shares the two cores (0.78-0.96 seen under a parallel test run), so it must only be clearly
        // beyond chance: at least 0.75, three times the bound the defaults are held to.
        var needed = classifier == "group read: duration (wall clock)" ? 0.75 : 0.9;
        Assert.True(result.Separation >= needed, result.ToString());
    }

    [Fact]
    public async Task Age_IsReported()
    {
        // Cover reads draw their group's age from recently wanted ones (GroupReadQueue.CoverGroup);
        // there is no switch to break that without changing production code, so this figure has no
        // control and is reported, not asserted.
        foreach (var (what, run) in new[] { ("defaults", await runs.Defaults), ("leaky control", await runs.Leaky) })
        {
            output.WriteLine($"{what}: {WireReadClassifiers.Age(run.Requests, run.ReadSlots)}");
        }
    }

    /// <summary>Standard error of an AUC at chance (Hanley–McNeil with AUC = 0.5).</summary>
    private static double StandardError(int positives, int negatives) => Math.Sqrt((positives + negatives + 1) / (12.0 * positives * negatives));
}
