using System.Globalization;
using TrustedProxy.Testing.Privacy.Wire;
using TrustedProxy.UploadCache;
using Xunit.Abstractions;

namespace TrustedProxy.PrivacyTests.Privacy;

/// <summary>
/// The wire classes run one after the other, not side by side: some observables are wall-clock
/// gaps and durations, and five runs on two cores at once blur them.
/// </summary>
[CollectionDefinition(Name)]
public sealed class WireCollection
{
    public const string Name = "Wire";
}

/// <summary>
/// The three wire runs the tests share (25–40 s each, overlapping): the production defaults (scaled to
/// virtual minutes), a proxy broken on every wire observable at once, and a proxy whose real
/// blocks never expire while cover does.
/// </summary>
public sealed class WireRuns
{
    // All three start at once: each run waits on its own request chain (front, s3rver, SQLite), so on two cores they overlap well.
    private readonly Task<WireRunResult> _defaults = Task.Run(() => WireRun.RunAsync(new WireRunOptions()));
    private readonly Task<WireRunResult> _leaky = Task.Run(() => WireRun.RunAsync(new WireRunOptions { Control = WireControl.WireLeaks }));
    private readonly Task<WireRunResult> _onlyCoverExpires = Task.Run(() => WireRun.RunAsync(new WireRunOptions
    {
        Control = WireControl.RealNeverDeleted | WireControl.StableBodies,
        Cache = WireRunOptions.ScaledDefaults(WireRunOptions.DefaultDuration) with { MeanDummyLifetimeSeconds = WireRunOptions.CompressedLifetime(WireRunOptions.DefaultDuration) },
    }));

    public Task<WireRunResult> Defaults => _defaults;

    /// <summary>Controls 1–3 and the size and header controls together (<see cref="WireControl.WireLeaks"/>).</summary>
    public Task<WireRunResult> Leaky => _leaky;

    /// <summary>
    /// Control 4: cover expires after a twelfth of the run on average, real blocks never. Bodies are
    /// made stable so that cover is accepted (and can expire) whatever the production dummy stream does.
    /// </summary>
    public Task<WireRunResult> OnlyCoverExpires => _onlyCoverExpires;
}

/// <summary>
/// Issue 20: the cloud sees the wire, not only the log. The production upload cache runs on virtual
/// time through the real S3 SDK against a front that checks payload hashes like S3 and records every
/// request; an attacker scores each written object by one observable at a time, and the AUC of real
/// against cover must be chance (0.45–0.55) at the defaults — and at least 0.9 (either direction)
/// against a proxy that leaks that observable on purpose, so that no check passes vacuously.
/// Figures and the command: docs/privacy-wire.md.
/// </summary>
[Collection(WireCollection.Name)]
public sealed class WireTests(WireRuns runs, ITestOutputHelper output) : IClassFixture<WireRuns>
{
    private const double ChanceLow = 0.45;
    private const double ChanceHigh = 0.55;
    private const double Separable = 0.9;

    /// <summary>Every classifier of <see cref="WireClassifiers.All"/>, by name (a test below checks the list is complete).</summary>
    public static readonly string[] ClassifierNames =
    [
        "payload hash mismatch",
        "header name set",
        "header values (worst header)",
        "shared 4-byte prefix (>1 % of objects)",
        "chi-square of the first 64 bytes (16 bins)",
        "byte value at one offset (worst of 0..63)",
        "chi-square of the whole body (256 bins)",
        "object size",
        "request sequence up to the write",
        "HEADs before the write",
        "gap from first request to the write (wall clock)",
    ];

    public static TheoryData<string> Classifiers => new(ClassifierNames);

    [Fact]
    public async Task Classifiers_ListedHere_AreEveryClassifierOfTheHarness()
    {
        var run = await runs.Defaults;
        var names = WireClassifiers.All(WireObject.FromRequests(run.Requests), run.Kinds).Select(r => r.Name).ToList();
        Assert.Equal(names.Order(), ClassifierNames.Order());
    }

    [Fact]
    public async Task Defaults_WriteEnoughOfBothKinds_AndTheFrontAcceptsEveryWrite()
    {
        var run = await runs.Defaults;
        var objects = WireObject.FromRequests(run.Requests);
        var refused = objects.Where(o => o.Write.Status is < 200 or >= 300).ToList();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{run.Requests.Count} requests, {objects.Count} objects ({run.Kinds.Count(k => k.Value == "Real")} real blocks named), {refused.Count} writes refused, {run.EngineErrors} failed steps, {run.WallTime.TotalSeconds:F1} s"));

        // Enough of each kind for an AUC to within about ±0.013 (one standard error at 1,000 each).
        Assert.True(objects.Count(o => run.Kinds.GetValueOrDefault(o.Name) == "Real") >= 800, "too few real writes for the AUCs to mean anything");
        Assert.True(objects.Count(o => run.Kinds.GetValueOrDefault(o.Name) == "Dummy") >= 800, "too few cover writes for the AUCs to mean anything");

        // A refused write is itself a label (and S3 refuses a body that differs from its signed hash).
        Assert.Empty(refused.Select(o => $"{run.Kinds.GetValueOrDefault(o.Name)} {o.Name}: {o.Write.Status}"));
    }

    [Theory]
    [MemberData(nameof(Classifiers))]
    public async Task Classifier_AtTheDefaults_CannotTellRealFromCover(string classifier)
    {
        var run = await runs.Defaults;
        var result = WireClassifiers.All(WireObject.FromRequests(run.Requests), run.Kinds).Single(r => r.Name == classifier);
        output.WriteLine("defaults: " + result);
        Assert.InRange(result.Auc, ChanceLow, ChanceHigh);
    }

    [Theory]
    [MemberData(nameof(Classifiers))]
    public async Task Classifier_AgainstAProxyThatLeaksIt_TellsRealFromCover(string classifier)
    {
        var run = await runs.Leaky;
        var result = WireClassifiers.All(WireObject.FromRequests(run.Requests), run.Kinds).Single(r => r.Name == classifier);
        output.WriteLine("leaky control: " + result);
        Assert.True(result.Separation >= Separable, $"the control leaks this observable, but {result}");
    }

    [Fact]
    public async Task HeaderValues_AgainstAProxyThatAddsAHeaderToRealWrites_FindThatHeader()
    {
        // The leaky run also lengthens real objects, so the worst header above may be content-length;
        // this checks that the value classifier finds the added header on its own as well.
        var run = await runs.Leaky;
        var result = WireClassifiers.HeaderValues(WireObject.FromRequests(run.Requests), run.Kinds).Single(r => r.Detail == ExtraHeaderOnReal.Header);
        output.WriteLine("leaky control: " + result);
        Assert.True(result.Separation >= Separable, result.ToString());
    }

    [Fact]
    public async Task Survival_AtTheDefaults_CannotTellRealFromCover()
    {
        var run = await runs.Defaults;
        var objects = WireObject.FromRequests(run.Requests);
        var result = WireClassifiers.Survival(objects, run.Kinds);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"defaults (MeanDummyLifetimeSeconds {new UploadCacheOptions().MeanDummyLifetimeSeconds} scaled to {WireRunOptions.ScaledDefaults(WireRunOptions.DefaultDuration).MeanDummyLifetimeSeconds} s): {result}; {objects.Count(o => !o.Survives)} deleted"));
        Assert.InRange(result.Auc, ChanceLow, ChanceHigh);
    }

    [Fact]
    public async Task Survival_WhenOnlyCoverExpires_TellsRealFromCover()
    {
        var run = await runs.OnlyCoverExpires;
        var objects = WireObject.FromRequests(run.Requests);
        var result = WireClassifiers.Survival(objects, run.Kinds);
        output.WriteLine($"only cover expires (mean lifetime a twelfth of the run): {result}; {objects.Count(o => !o.Survives)} deleted");
        Assert.True(result.Separation >= Separable, $"cover expires and real blocks do not, but {result}");
    }

    [Fact]
    public async Task LogAttacks_OnTheSurvivors_AtTheDefaults_LearnNoMoreThanOnTheWholeLog()
    {
        var result = SurvivorAttacks.Run(await runs.Defaults);
        Report("defaults", result);

        // Whatever is deleted at the defaults is deleted regardless of kind, so the survivors are a
        // fair sample of the log: the study-size count does not sharpen on them, and an upload's
        // candidate writes are as many (a uniform guess among them no better).
        Assert.True(result.BestBurst.Correlation - result.FullLogAtBestWindow.Correlation < 0.1, "the survivors count bursts better than the whole log");
        Assert.True(result.Linking.Advantage - result.FullLogLinking.Advantage < 0.01, "the survivors link uploads better than the whole log");
        Assert.True(result.Linking.Chance < 1.1 * result.FullLogLinking.Chance, "an upload's candidate writes are fewer among the survivors");
    }

    [Fact]
    public async Task LogAttacks_OnTheSurvivors_WhenOnlyCoverExpires_CountBurstsAndNarrowEveryUploadsCandidates()
    {
        var result = SurvivorAttacks.Run(await runs.OnlyCoverExpires);
        Report("only cover expires", result);

        // With the cover gone the survivors are (nearly) the real writes, whose rate follows the
        // studies sent (the whole log's does not: its rate is constant), and the writes that could be
        // an upload's object thin out to the real ones, so a uniform guess among them is right half as
        // often again. In a half-hour log the studies overlap, so the burst count stays modest even on
        // real writes alone; what is asserted is the gain over the whole log.
        Assert.True(result.BestBurst.Correlation - result.FullLogAtBestWindow.Correlation >= 0.2, "removing the expired cover did not sharpen the burst count");
        Assert.True(result.Linking.Chance >= 1.5 * result.FullLogLinking.Chance, $"the survivors' candidate sets are not narrower ({result.Linking.Chance:P2} vs {result.FullLogLinking.Chance:P2})");
    }

    private void Report(string configuration, SurvivorAttackResult result)
    {
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{configuration}: {result.Survivors} of {result.Written} written objects survive"));
        for (var i = 0; i < result.Burst.Count; i++)
        {
            var (s, f) = (result.Burst[i], result.FullLogBurst[i]);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  burst W={s.Window.TotalMinutes} min: survivors r {s.Correlation:F2}, AUC {s.Auc:F3}; whole log r {f.Correlation:F2}, AUC {f.Auc:F3}"));
        }

        foreach (var (what, l) in new[] { ("survivors", result.Linking), ("whole log", result.FullLogLinking) })
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  upload linking, {what}: first write {l.FirstWriteAccuracy:P1}, density {l.DensityAccuracy:P1}, chance {l.Chance:P2} (window {l.CandidateWindowSeconds:F0} s, {l.Samples} uploads)"));
        }
    }
}
