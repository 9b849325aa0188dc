using System.Globalization;
using TrustedProxy.Testing.Privacy.Wire;
using Xunit.Abstractions;

namespace TrustedProxy.PrivacyTests.Privacy;

/// <summary>
/// The read runs, started together: ten virtual minutes of writes at the defaults, then requests
/// served through the production group reader on its epoch schedule, driven on the fake clock;
/// once as the production code does it and once per broken control.
/// </summary>
public sealed class WireReadRuns
{
    public const int WantedReads = 500;

    private static readonly WireRunOptions Base = new() { Duration = TimeSpan.FromMinutes(10), WantedReads = WantedReads, Seed = int.Parse(Environment.GetEnvironmentVariable("TP_WIRE_SEED") ?? "1") };

    private readonly Dictionary<WireReadControl, Lazy<Task<WireRunResult>>> _runs = new[]
    {
        WireReadControl.None,
        WireReadControl.HeadBeforeWanted | WireReadControl.ExtraHeaderOnWanted,
        WireReadControl.UniformCover,
        WireReadControl.ReplayRecentWanted,
        WireReadControl.PoissonEpochs,
    }.ToDictionary(c => c, c => new Lazy<Task<WireRunResult>>(() => Task.Run(() => WireRun.RunAsync(Options(c)))));

    /// <summary>
    /// A control's run. Poisson epochs show their length bias only while epochs are visible, that is
    /// while some stream is being read: that control runs with four times the cover.
    /// </summary>
    public static WireRunOptions Options(WireReadControl control) => Base with
    {
        ReadControl = control,
        Read = control == WireReadControl.PoissonEpochs ? Base.Read with { CoverPerWanted = 4 } : Base.Read,
    };

    public static TimeSpan Epoch => TimeSpan.FromSeconds(Base.Read.EpochSeconds);

    public Task<WireRunResult> Of(WireReadControl control) => _runs[control].Value;
}

/// <summary>
/// Issue 21: can the cloud tell a read that serves a request from cover, by what it receives? Each
/// object read is scored by one observable (the stream-start classifier scores the first epoch of
/// each stream). Chance is asserted as |AUC − 0.5| ≤ max(0.05, 4 standard errors of an AUC at
/// chance); against the control that breaks its observable each classifier must separate
/// (max(AUC, 1 − AUC) ≥ 0.75; the gap before a stream's epoch, which only shows while other streams
/// keep the epochs visible, ≥ 0.6). Figures: docs/privacy-wire.md.
/// </summary>
[Collection(WireCollection.Name)]
public sealed class WireReadTests(WireReadRuns runs, ITestOutputHelper output) : IClassFixture<WireReadRuns>
{
    /// <summary>Each classifier and the control that breaks what it looks at.</summary>
    public static readonly IReadOnlyDictionary<string, WireReadControl> Controls = new Dictionary<string, WireReadControl>
    {
        ["read: requests per object"] = WireReadControl.HeadBeforeWanted | WireReadControl.ExtraHeaderOnWanted,
        ["read: verb sequence"] = WireReadControl.HeadBeforeWanted | WireReadControl.ExtraHeaderOnWanted,
        ["read: header name set"] = WireReadControl.HeadBeforeWanted | WireReadControl.ExtraHeaderOnWanted,
        ["read: header values (worst header)"] = WireReadControl.HeadBeforeWanted | WireReadControl.ExtraHeaderOnWanted,
        ["read: age at read"] = WireReadControl.UniformCover,
        ["read: distance to recent reads"] = WireReadControl.ReplayRecentWanted,
        ["read: epoch volume"] = WireReadControl.UniformCover,
        ["read: burst length"] = WireReadControl.UniformCover,
        ["stream start: gap before its epoch"] = WireReadControl.PoissonEpochs,
    };

    public static TheoryData<string> Classifiers => new(Controls.Keys);

    [Fact]
    public async Task ReadClassifiers_ListedHere_AreEveryReadClassifierOfTheHarness_AndEveryRequestWasServed()
    {
        var run = await runs.Of(WireReadControl.None);
        Assert.Equal(WireReadClassifiers.All(run.Requests, run.ReadTruth, WireReadRuns.Epoch).Select(r => r.Name).Order(), Controls.Keys.Order());
        var wanted = run.ReadTruth.Count(t => t.Wanted);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{run.ReadTruth.Count} reads, {wanted} wanted, {run.ReadTruth.Select(t => t.Stream).Distinct().Count(s => s > 0)} request streams, {run.ReadTruth.Select(t => t.Stream).Distinct().Count(s => s < 0)} cover streams, {run.WallTime.TotalSeconds:F1} s"));
        var view = WireReadClassifiers.ReadView.Of(run.Requests, run.ReadTruth, WireReadRuns.Epoch);
        foreach (var kind in new[] { "wanted", "padding", "cover" })
        {
            var reads = view.Reads.Where(r => kind == "wanted" ? r.Wanted : kind == "cover" ? r.Cover : !r.Wanted && !r.Cover).ToList();
            var ages = reads.Select(r => (double)r.Age).Order().ToList();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"DIAG {kind}: {reads.Count} reads, age p10 {ages[ages.Count / 10]} p50 {ages[ages.Count / 2]} p90 {ages[ages.Count * 9 / 10]}"));
        }

        var writeOrder = new Dictionary<string, int>();
        foreach (var put in run.Requests.Where(r => r.Method == "PUT" && r.Key is not null && r.Status is >= 200 and < 300))
        {
            writeOrder.TryAdd(put.Key!, writeOrder.Count);
        }

        var sizeOf = run.ReadTruth.GroupBy(t => t.Stream).ToDictionary(g => g.Key, g => g.Count());
        foreach (var big in new[] { false, true })
        {
            foreach (var kind in new[] { "wanted", "padding", "cover" })
            {
                var ages = run.ReadTruth.Where(t => (sizeOf[t.Stream] >= 64) == big && (kind == "wanted" ? t.Wanted : kind == "cover" ? t.Stream < 0 : t.Stream > 0 && !t.Wanted)).Select(t => (double)(writeOrder.Count - writeOrder.GetValueOrDefault(t.Key))).Order().ToList();
                if (ages.Count > 10)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"DIAG big={big} {kind}: {ages.Count} reads, age p10 {ages[ages.Count / 10]} p50 {ages[ages.Count / 2]} p90 {ages[ages.Count * 9 / 10]}"));
                }
            }
        }

        var streams = run.ReadTruth.GroupBy(t => t.Stream).Select(g => (Cover: g.Key < 0, Size: g.Count())).ToList();
        foreach (var cover in new[] { false, true })
        {
            var sizes = streams.Where(x => x.Cover == cover).Select(x => x.Size).Order().ToList();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"DIAG streams cover={cover}: {sizes.Count}, size p10 {sizes[sizes.Count / 10]} p50 {sizes[sizes.Count / 2]} p90 {sizes[sizes.Count * 9 / 10]} total {sizes.Sum()}"));
        }

        Assert.True(run.ReadTruth.Select(t => t.Stream).Distinct().Count(s => s > 0) >= WireReadRuns.WantedReads / 2, "requests become streams");
    }

    [Theory]
    [MemberData(nameof(Classifiers))]
    public async Task ReadClassifier_AtTheDefaults_CannotTellWantedFromCover(string classifier)
    {
        var run = await runs.Of(WireReadControl.None);
        var result = WireReadClassifiers.All(run.Requests, run.ReadTruth, WireReadRuns.Epoch).Single(r => r.Name == classifier);
        var bound = Math.Max(0.05, 4 * StandardError(result.Real, result.Cover));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"defaults: {result} (bound ±{bound:F3})"));
        Assert.InRange(result.Auc, 0.5 - bound, 0.5 + bound);
    }

    [Theory]
    [MemberData(nameof(Classifiers))]
    public async Task ReadClassifier_AgainstItsControl_TellsWantedFromCover(string classifier)
    {
        var control = Controls[classifier];
        var run = await runs.Of(control);
        var result = WireReadClassifiers.All(run.Requests, run.ReadTruth, WireReadRuns.Epoch).Single(r => r.Name == classifier);
        output.WriteLine($"control {control}: {result}");
        var needed = classifier.StartsWith("stream start", StringComparison.Ordinal) ? 0.6 : 0.75;
        Assert.True(result.Separation >= needed, result.ToString());
    }

    /// <summary>Standard error of an AUC at chance (Hanley–McNeil with AUC = 0.5).</summary>
    private static double StandardError(int positives, int negatives) => Math.Sqrt((positives + negatives + 1) / (12.0 * positives * negatives));
}
