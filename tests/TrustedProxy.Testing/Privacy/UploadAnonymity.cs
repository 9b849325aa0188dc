namespace TrustedProxy.Testing.Privacy;

/// <summary>Entropy of the attacker's belief about which write is an upload's object (Serjantov–Danezis), in bits.</summary>
public sealed record AnonymityResult(int Samples, double MeanBits, double P5Bits, double MinBits)
{
    /// <summary>2^H at the 5th percentile: the size of a uniform set as uncertain as the worst 5% of uploads.</summary>
    public double P5EffectiveSetSize => Math.Pow(2, P5Bits);

    public double MeanEffectiveSetSize => Math.Pow(2, MeanBits);
}

/// <summary>
/// Attack (d), the anonymity set of an upload: for a record arriving at a, the attacker who knows
/// the schedule's delay density f gives each write o the probability p(o) ∝ f(t_o − a), dummies
/// included since it cannot tell them apart; H = −Σ p log2 p and 2^H is the effective set size.
/// </summary>
public static class UploadAnonymity
{
    public static AnonymityResult Run(CloudLogView view, DelayDistribution delays, IReadOnlyList<UploadedRecord> uploads)
    {
        var entropies = new List<double>(uploads.Count);
        foreach (var upload in uploads)
        {
            var a = view.Seconds(upload.ArrivedAt);
            var from = view.FirstAtOrAfter(a);
            var to = view.FirstAfter(a + delays.Max);
            var entropy = new EntropyAccumulator();
            for (var i = from; i < to; i++)
            {
                entropy.Add(delays.Density(view.Times[i] - a));
            }

            if (entropy.HasMass)
            {
                entropies.Add(entropy.Bits);
            }
        }

        return new AnonymityResult(entropies.Count, entropies.Average(), Estimators.Percentile(entropies, 5), entropies.Min());
    }
}
