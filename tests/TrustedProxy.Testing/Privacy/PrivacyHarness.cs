using System.Globalization;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Testing.Privacy;

/// <summary>An upload-cache configuration under test, with the label it has in the report.</summary>
public sealed record PrivacyConfiguration(string Label, UploadCacheOptions Options)
{
    public static PrivacyConfiguration Of(UploadCacheOptions options) => new(Describe(options), options);

    /// <summary>A short label naming what matters of a configuration.</summary>
    public static string Describe(UploadCacheOptions o)
    {
        var padding = o.Padding == FixedBlockPadding.SchemeName ? $"fixed {o.BlockSizeBytes / 1024} KiB" : o.Padding;
        var label = !o.Enabled
            ? $"cache off, {padding}"
            : o.Schedule == ConstantRateSchedule.ScheduleName
                ? $"constant-rate μ={o.SlotsPerSecond:0.##}/s k={o.PoolThreshold} (R={Duration(o.PoolThreshold / o.SlotsPerSecond)}), {padding}"
                : $"exp-hold mean {Duration(o.MeanHoldSeconds)}{(o.PoolThreshold > 0 ? $" k={o.PoolThreshold}" : "")}, cover {o.CoverPerSecond:0.##}/s, {padding}";
        return o == new UploadCacheOptions() ? $"**defaults**: {label}" : label;
    }

    internal static string Duration(double seconds) => seconds switch
    {
        double.NaN => "–",
        < 1 => string.Create(CultureInfo.InvariantCulture, $"{seconds * 1000:0} ms"),
        < 120 => string.Create(CultureInfo.InvariantCulture, $"{seconds:0.#} s"),
        < 7200 => string.Create(CultureInfo.InvariantCulture, $"{seconds / 60:0.#} min"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:0.#} h"),
    };
}

/// <summary>What the protection costs: how long blocks wait, and the dummies written.</summary>
/// <param name="MeanDelaySeconds">Mean time from a block's arrival to its write.</param>
/// <param name="P99DelaySeconds">99th percentile of the same.</param>
/// <param name="RecordP99DelaySeconds">99th percentile of the time until a record's last block is written.</param>
/// <param name="MaxDelaySeconds">The longest any block waited.</param>
/// <param name="RealWritesPerSecond">Writes of real blocks per second while the hospitals send.</param>
/// <param name="DummiesPerSecond">Writes of dummies per second while the hospitals send.</param>
/// <param name="DummyBytesPerDay">Bytes of dummies written per day while the hospitals send.</param>
/// <param name="LogSeconds">From the start of the workload to the last write.</param>
public sealed record CostResult(double MeanDelaySeconds, double P99DelaySeconds, double RecordP99DelaySeconds, double MaxDelaySeconds, double RealWritesPerSecond, double DummiesPerSecond, double DummyBytesPerDay, double LogSeconds);

/// <summary>Every attack on one configuration's log, and its cost.</summary>
public sealed record PrivacyEvaluation(
    PrivacyConfiguration Configuration,
    WorkloadLoad Load,
    CostResult Cost,
    UploadLinkingResult Linking,
    IReadOnlyList<PairWindowResult> Pairs,
    IReadOnlyList<BurstWindowResult> Bursts,
    AnonymityResult Anonymity)
{
    public PairWindowResult PairsAt(TimeSpan? window) => Pairs.Single(p => p.Window == window);

    /// <summary>The burst window that served the attacker best.</summary>
    public BurstWindowResult BestBurst => Bursts.MaxBy(b => b.Advantage)!;
}

/// <summary>How hard the attacker looks: samples and windows.</summary>
public sealed record AttackSettings
{
    public int UploadSamples { get; init; } = 400;

    public int PairsPerClass { get; init; } = 20_000;

    public IReadOnlyList<TimeSpan?> PairWindows { get; init; } = SamePatientPairAttack.DefaultWindows;

    public IReadOnlyList<TimeSpan> BurstWindows { get; init; } = BurstSizeAttack.DefaultWindows;

    public int Seed { get; init; } = 7;
}

/// <summary>Simulates configurations over one workload and runs every attack on each log.</summary>
public static class PrivacyHarness
{
    /// <summary>The configurations of the report, side by side: no cache, the constant-rate schedule at several (μ, k), the exponential hold at several means and cover rates.</summary>
    public static IReadOnlyList<PrivacyConfiguration> StandardConfigurations()
    {
        var defaults = new UploadCacheOptions();
        var constant = defaults with { Schedule = ConstantRateSchedule.ScheduleName, Padding = FixedBlockPadding.SchemeName };
        var exponential = defaults with { Schedule = ExponentialHoldSchedule.ScheduleName, Padding = FixedBlockPadding.SchemeName, PoolThreshold = 0 };
        UploadCacheOptions[] options =
        [
            defaults with { Enabled = false, Padding = PadmePadding.SchemeName },
            defaults with { Enabled = false, Padding = FixedBlockPadding.SchemeName },
            constant with { SlotsPerSecond = 2, PoolThreshold = 14_400 },
            constant with { SlotsPerSecond = 4, PoolThreshold = 14_400 },
            constant with { SlotsPerSecond = 4, PoolThreshold = 28_800 },
            constant with { SlotsPerSecond = 4, PoolThreshold = 57_600 },

            // What the server runs for a site that declares this workload's load (270 studies of 43.3 MB a day): μ and k derived (the backup's share included, on by default), R = 2 h.
            SlotRate.Apply(constant with { DeclaredUploadsPerDay = 270, DeclaredUploadMegabytes = 43.3 }, rateConfigured: false, thresholdConfigured: false, backup: true),
            constant with { SlotsPerSecond = 4, PoolThreshold = 28_800, Padding = PadmePadding.SchemeName },
            exponential with { MeanHoldSeconds = 600, CoverPerSecond = 0 },
            exponential with { MeanHoldSeconds = 3600, CoverPerSecond = 0 },
            exponential with { MeanHoldSeconds = 3600, CoverPerSecond = 1 },
            exponential with { MeanHoldSeconds = 7200, CoverPerSecond = 3 },
        ];
        var list = options.Select(PrivacyConfiguration.Of).ToList();
        if (!list.Any(c => c.Options == defaults))
        {
            list.Insert(2, PrivacyConfiguration.Of(defaults));
        }

        return list;
    }

    public static async Task<PrivacyEvaluation> EvaluateAsync(HospitalWorkload workload, PrivacyConfiguration configuration, AttackSettings settings, CancellationToken cancellationToken = default)
    {
        var log = await CuriousCloudSimulation.RunAsync(workload, configuration.Options, settings.Seed, cancellationToken).ConfigureAwait(false);
        return Evaluate(log, configuration, settings);
    }

    /// <summary>Evaluates several configurations, as many at once as there are cores.</summary>
    public static async Task<IReadOnlyList<PrivacyEvaluation>> EvaluateAllAsync(HospitalWorkload workload, IReadOnlyList<PrivacyConfiguration> configurations, AttackSettings settings, CancellationToken cancellationToken = default)
    {
        var results = new PrivacyEvaluation[configurations.Count];
        await Parallel.ForEachAsync(
            Enumerable.Range(0, configurations.Count),
            new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = cancellationToken },
            async (i, ct) => results[i] = await Task.Run(() => EvaluateAsync(workload, configurations[i], settings, ct), ct).ConfigureAwait(false)).ConfigureAwait(false);
        return results;
    }

    public static PrivacyEvaluation Evaluate(SimulatedLog log, PrivacyConfiguration configuration, AttackSettings settings)
    {
        var view = CloudLogView.FromObservations(log.Observations);
        var truth = LogTruth.Align(view, log.Objects);
        var delays = new DelayDistribution(log.Objects.Values.Select(o => (o.WrittenAt - o.ArrivedAt).TotalSeconds));
        var random = new Random(settings.Seed);
        var records = log.Workload.Records;
        var uploads = Enumerable.Range(0, settings.UploadSamples).Select(_ => records[random.Next(records.Count)]).ToList();

        return new PrivacyEvaluation(
            configuration,
            log.Workload.Load(PaddingSchemes.Create(configuration.Options)),
            Cost(log, view, truth, delays),
            UploadLinkingAttack.Run(view, truth, delays, uploads, random),
            SamePatientPairAttack.Run(view, truth, settings.PairWindows, settings.PairsPerClass, random),
            BurstSizeAttack.Run(view, truth, log.Workload.Studies, settings.BurstWindows),
            UploadAnonymity.Run(view, delays, uploads));
    }

    private static CostResult Cost(SimulatedLog log, CloudLogView view, LogTruth truth, DelayDistribution delays)
    {
        var recordDelays = log.Objects.Values
            .GroupBy(o => o.RecordId)
            .Select(g => g.Max(o => (o.WrittenAt - o.ArrivedAt).TotalSeconds))
            .ToList();
        // Rates over the time the hospitals were sending: the drain after the last arrival (a
        // simulation artefact, when the cache empties with nothing coming in) is left out.
        var arrivalsEnd = view.Seconds(log.Start + log.Workload.Duration);
        long dummies = 0, dummyBytes = 0, real = 0;
        for (var i = 0; i < view.Count && view.Times[i] <= arrivalsEnd; i++)
        {
            if (truth.Objects[i] is null)
            {
                dummies++;
                dummyBytes += view.Lengths[i];
            }
            else
            {
                real++;
            }
        }

        var seconds = log.Workload.Duration.TotalSeconds;
        return new CostResult(
            delays.Mean,
            delays.Quantile(0.99),
            Estimators.Percentile(recordDelays, 99),
            delays.Max,
            real / seconds,
            dummies / seconds,
            dummyBytes / seconds * 86400,
            (log.End - log.Start).TotalSeconds);
    }
}
