namespace TrustedProxy.Testing.Privacy;

/// <summary>Accuracy of linking an upload to one of its objects, against guessing uniformly in the same candidate window.</summary>
/// <param name="Samples">Uploads sampled.</param>
/// <param name="CandidateWindowSeconds">The attacker looks at writes in [a, a + this] after an arrival at a.</param>
/// <param name="FirstWriteAccuracy">Guess: the first write at or after the arrival.</param>
/// <param name="DensityAccuracy">Guess: the write whose delay is most likely under the schedule's delay distribution.</param>
/// <param name="Chance">Expected accuracy of a uniform guess among the candidate writes.</param>
public sealed record UploadLinkingResult(int Samples, double CandidateWindowSeconds, double FirstWriteAccuracy, double DensityAccuracy, double Chance)
{
    /// <summary>The better guess's accuracy above chance, in probability.</summary>
    public double Advantage => Math.Max(FirstWriteAccuracy, DensityAccuracy) - Chance;
}

/// <summary>
/// Attack (a): the attacker knows when a record arrived at the proxy (a hospital insider, or a
/// network observer) and wants the object it became. It knows the schedule, so the candidate window
/// is the delay's 99th percentile (at least a minute). Success: the guessed write is one of the
/// record's objects.
/// </summary>
public static class UploadLinkingAttack
{
    public static readonly TimeSpan MinimumCandidateWindow = TimeSpan.FromMinutes(1);

    public static UploadLinkingResult Run(CloudLogView view, LogTruth truth, DelayDistribution delays, IReadOnlyList<UploadedRecord> uploads, Random random)
    {
        var window = Math.Max(delays.Quantile(0.99), MinimumCandidateWindow.TotalSeconds);
        int firstHits = 0, densityHits = 0;
        double chance = 0;
        foreach (var upload in uploads)
        {
            var a = view.Seconds(upload.ArrivedAt);
            var from = view.FirstAtOrAfter(a);
            var to = view.FirstAfter(a + window);
            if (to <= from)
            {
                continue;
            }

            bool Hit(int index) => truth.Objects[index]?.RecordId == upload.Id;

            if (Hit(from))
            {
                firstHits++;
            }

            int best = from, own = 0;
            var bestDensity = -1.0;
            for (var i = from; i < to; i++)
            {
                var density = delays.Density(view.Times[i] - a);
                if (density > bestDensity)
                {
                    (best, bestDensity) = (i, density);
                }

                if (Hit(i))
                {
                    own++;
                }
            }

            if (Hit(best))
            {
                densityHits++;
            }

            chance += (double)own / (to - from);
        }

        var n = uploads.Count;
        return new UploadLinkingResult(n, window, (double)firstHits / n, (double)densityHits / n, chance / n);
    }
}
