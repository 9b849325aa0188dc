namespace TrustedProxy.Testing.Privacy;

/// <summary>The burst attack with one counting window: correlation of the estimate with the true count (chance 0) and AUC of "above-median study" (chance 0.5).</summary>
public sealed record BurstWindowResult(TimeSpan Window, double Correlation, double Auc)
{
    public double Advantage => Math.Abs(Auc - 0.5);
}

/// <summary>
/// Attack (c): how many objects did a study contain? The attacker knows when each study was sent
/// (the hospital's schedule, say) and estimates its size as the writes in [t, t + W] less the log's
/// mean write rate × W.
/// </summary>
public static class BurstSizeAttack
{
    public static readonly IReadOnlyList<TimeSpan> DefaultWindows =
        [TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(10), TimeSpan.FromHours(1), TimeSpan.FromHours(4)];

    public static IReadOnlyList<BurstWindowResult> Run(CloudLogView view, LogTruth truth, IReadOnlyList<StudyBurst> studies, IReadOnlyList<TimeSpan> windows)
    {
        var objectsPerStudy = new Dictionary<int, int>();
        foreach (var o in truth.Objects)
        {
            if (o is not null)
            {
                objectsPerStudy[o.StudyId] = objectsPerStudy.GetValueOrDefault(o.StudyId) + 1;
            }
        }

        var counts = studies.Select(s => (double)objectsPerStudy.GetValueOrDefault(s.Id)).ToList();
        var median = Estimators.Percentile(counts, 50);
        var baseline = view.Count / Math.Max(view.Span, 1);
        var results = new List<BurstWindowResult>();
        foreach (var window in windows)
        {
            var w = window.TotalSeconds;
            var estimates = studies.Select(s =>
            {
                var t = view.Seconds(s.StartedAt);
                return view.FirstAfter(t + w) - view.FirstAtOrAfter(t) - baseline * w;
            }).ToList();
            var above = estimates.Where((_, i) => counts[i] > median).ToList();
            var below = estimates.Where((_, i) => counts[i] < median).ToList();
            results.Add(new BurstWindowResult(window, Estimators.Pearson(estimates, counts), Estimators.Auc(above, below)));
        }

        return results;
    }
}
