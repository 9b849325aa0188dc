using TrustedProxy.Storage;

namespace TrustedProxy.Testing.Privacy.Wire;

/// <summary>The log attacks rerun on the objects still there at the end of a wire log (what survives if only cover is deleted is the real data).</summary>
/// <param name="Survivors">Objects written and never deleted.</param>
/// <param name="Written">Objects written.</param>
/// <param name="Burst">The burst-size attack per window, on the survivors.</param>
/// <param name="Linking">The upload-to-object attack, on the survivors.</param>
public sealed record SurvivorAttackResult(int Survivors, int Written, IReadOnlyList<BurstWindowResult> Burst, UploadLinkingResult Linking)
{
    /// <summary>The burst window with the strongest correlation.</summary>
    public BurstWindowResult BestBurst => Burst.MaxBy(b => b.Correlation)!;
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
        var view = CloudLogView.FromObservations(survivors);
        var truth = LogTruth.Align(view, run.RealObjects);
        var end = run.Workload.Start + (run.Uploads.Count == 0 ? TimeSpan.Zero : run.Uploads[^1].ArrivedAt - run.Workload.Start);
        var studies = run.Workload.Studies.Where(s => s.StartedAt <= end).ToList();
        var burst = BurstSizeAttack.Run(view, truth, studies, Windows);

        // The attacker knows the schedule's delay distribution; the run's own real delays stand in for it (its best case).
        var delays = new DelayDistribution(run.RealObjects.Values.Select(o => (o.WrittenAt - o.ArrivedAt).TotalSeconds));
        var random = new Random(seed);
        var sample = run.Uploads.OrderBy(_ => random.Next()).Take(400).ToList();
        var linking = UploadLinkingAttack.Run(view, truth, delays, sample, new Random(seed));
        return new SurvivorAttackResult(survivors.Count, puts.Count, burst, linking);
    }
}
