using TrustedProxy.Storage;

namespace TrustedProxy.Testing.Privacy.Wire;

/// <summary>The log attacks rerun on the objects still there at the end of a wire log (what survives if only cover is deleted is the real data).</summary>
/// <param name="Survivors">Objects written and never deleted.</param>
/// <param name="Written">Objects written.</param>
/// <param name="Burst">The burst-size attack per window, on the survivors.</param>
/// <param name="Linking">The upload-to-object attack, on the survivors.</param>
/// <param name="FullLogBurst">The burst-size attack on every accepted write, for comparison: what the survivors add.</param>
/// <param name="FullLogLinking">The upload-to-object attack on every accepted write.</param>
public sealed record SurvivorAttackResult(int Survivors, int Written, IReadOnlyList<BurstWindowResult> Burst, UploadLinkingResult Linking, IReadOnlyList<BurstWindowResult> FullLogBurst, UploadLinkingResult FullLogLinking)
{
    /// <summary>The burst window with the strongest correlation on the survivors.</summary>
    public BurstWindowResult BestBurst => Burst.MaxBy(b => b.Correlation)!;

    /// <summary>The same window on the full log.</summary>
    public BurstWindowResult FullLogAtBestWindow => FullLogBurst.Single(b => b.Window == BestBurst.Window);
}

/// <summary>
/// Adapts a wire log to the existing log attacks (<see cref="BurstSizeAttack"/>,
/// <see cref="UploadLinkingAttack"/>): <see cref="CloudObservation"/>s from the requests the front
/// accepted, restricted to the objects never deleted.
/// </summary>
public static class SurvivorAttacks
{
    /// <summary>Windows fitted to a run of virtual minutes with a hold of a few minutes.</summary>
    public static readonly IReadOnlyList<TimeSpan> Windows = [TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(10)];

    public static SurvivorAttackResult Run(WireRunResult run, int seed = 1)
    {
        var observations = run.Observations();
        var deleted = observations.Where(o => o.Operation == "delete").Select(o => o.Name).ToHashSet();
        var puts = observations.Where(o => o.Operation == "put").ToList();
        var survivors = puts.Where(o => !deleted.Contains(o.Name)).ToList();
        var (burst, linking) = Attack(run, survivors, seed);
        var (fullBurst, fullLinking) = Attack(run, puts, seed);
        return new SurvivorAttackResult(survivors.Count, puts.Count, burst, linking, fullBurst, fullLinking);
    }

    private static (IReadOnlyList<BurstWindowResult> Burst, UploadLinkingResult Linking) Attack(WireRunResult run, IReadOnlyList<CloudObservation> puts, int seed)
    {
        var view = CloudLogView.FromObservations(puts);
        var truth = LogTruth.Align(view, run.RealObjects);
        // Only studies whose longest window ends inside the log: a window cut off by the end of the run counts short.
        var end = view.Origin + TimeSpan.FromSeconds(view.Span);
        var studies = run.Workload.Studies.Where(s => s.StartedAt + Windows[^1] <= end).ToList();
        var burst = BurstSizeAttack.Run(view, truth, studies, Windows);

        // The attacker knows the schedule's delay distribution; the run's own real delays stand in for it (its best case).
        var delays = new DelayDistribution(run.RealObjects.Values.Select(o => (o.WrittenAt - o.ArrivedAt).TotalSeconds));
        var random = new Random(seed);
        var sample = run.Uploads.OrderBy(_ => random.Next()).Take(400).ToList();
        return (burst, UploadLinkingAttack.Run(view, truth, delays, sample, new Random(seed)));
    }
}
