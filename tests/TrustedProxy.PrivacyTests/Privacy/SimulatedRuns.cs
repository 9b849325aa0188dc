using System.Collections.Concurrent;
using TrustedProxy.UploadCache;

namespace TrustedProxy.PrivacyTests.Privacy;

/// <summary>
/// The simulations the tests share, each run once per test process: four days of the documented
/// load (about 1,000 studies, enough for the burst attack's AUC to be within ±0.03 of its value),
/// through each configuration under test, with fixed seeds.
/// </summary>
internal static class SimulatedRuns
{
    public static readonly WorkloadOptions Load = new() { Duration = TimeSpan.FromHours(96), Seed = 1 };

    public static readonly AttackSettings Attacker = new() { Seed = 1, UploadSamples = 300 };

    public static readonly UploadCacheOptions CacheOffPadme = new() { Enabled = false, Padding = PadmePadding.SchemeName };

    public static readonly UploadCacheOptions CacheOffFixedBlocks = new() { Enabled = false, Padding = FixedBlockPadding.SchemeName };

    /// <summary>Haas et al.'s cache without cover: a 10-minute mean hold, no threshold.</summary>
    public static readonly UploadCacheOptions ExponentialHoldTenMinutes = new()
    {
        Schedule = ExponentialHoldSchedule.ScheduleName,
        Padding = FixedBlockPadding.SchemeName,
        MeanHoldSeconds = 600,
        PoolThreshold = 0,
        CoverPerSecond = 0,
    };

    private static readonly Lazy<HospitalWorkload> SharedWorkload = new(() => HospitalWorkload.Generate(Load));

    private static readonly ConcurrentDictionary<UploadCacheOptions, Lazy<Task<Run>>> Runs = new();

    public static HospitalWorkload Workload => SharedWorkload.Value;

    public static Task<Run> Of(UploadCacheOptions options) =>
        Runs.GetOrAdd(options, o => new Lazy<Task<Run>>(() => Task.Run(async () =>
        {
            var log = await CuriousCloudSimulation.RunAsync(Workload, o, Attacker.Seed);
            return new Run(log, PrivacyHarness.Evaluate(log, PrivacyConfiguration.Of(o), Attacker));
        }))).Value;

    internal sealed record Run(SimulatedLog Log, PrivacyEvaluation Evaluation);
}
