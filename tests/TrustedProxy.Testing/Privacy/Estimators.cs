namespace TrustedProxy.Testing.Privacy;

/// <summary>The statistics the attacks report, written out so that they can be unit-tested on known inputs.</summary>
public static class Estimators
{
    /// <summary>
    /// AUC with weights: the probability that a positive drawn by weight outscores a negative drawn
    /// by weight (ties count half). With each unit's observations weighted 1/count, every unit (a
    /// read stream) counts once, however many observations it has.
    /// </summary>
    public static double WeightedAuc(IReadOnlyList<(double Score, double Weight)> positives, IReadOnlyList<(double Score, double Weight)> negatives)
    {
        var positiveTotal = positives.Sum(p => p.Weight);
        var negativeTotal = negatives.Sum(n => n.Weight);
        if (positiveTotal <= 0 || negativeTotal <= 0)
        {
            return double.NaN;
        }

        var all = positives.Select(p => (p.Score, p.Weight, Positive: true)).Concat(negatives.Select(n => (n.Score, n.Weight, Positive: false))).OrderBy(x => x.Score).ToArray();
        double wins = 0, negativesBelow = 0;
        for (var start = 0; start < all.Length;)
        {
            var end = start;
            double groupPositives = 0, groupNegatives = 0;
            while (end < all.Length && all[end].Score.Equals(all[start].Score))
            {
                if (all[end].Positive)
                {
                    groupPositives += all[end].Weight;
                }
                else
                {
                    groupNegatives += all[end].Weight;
                }

                end++;
            }

            wins += groupPositives * (negativesBelow + groupNegatives / 2);
            negativesBelow += groupNegatives;
            start = end;
        }

        return wins / (positiveTotal * negativeTotal);
    }

    /// <summary>
    /// Area under the ROC curve as the Mann–Whitney statistic: the probability that a random
    /// positive scores above a random negative, ties counted half. NaN when a class is empty.
    /// </summary>
    public static double Auc(IReadOnlyList<double> positives, IReadOnlyList<double> negatives)
    {
        if (positives.Count == 0 || negatives.Count == 0)
        {
            return double.NaN;
        }

        var all = new (double Score, bool Positive)[positives.Count + negatives.Count];
        for (var i = 0; i < positives.Count; i++)
        {
            all[i] = (positives[i], true);
        }

        for (var i = 0; i < negatives.Count; i++)
        {
            all[positives.Count + i] = (negatives[i], false);
        }

        Array.Sort(all, (a, b) => a.Score.CompareTo(b.Score));

        // Walk groups of equal score: a positive beats every negative below its group and half of those in it.
        double wins = 0;
        long negativesBelow = 0;
        for (var start = 0; start < all.Length;)
        {
            var end = start;
            long groupPositives = 0, groupNegatives = 0;
            while (end < all.Length && all[end].Score.Equals(all[start].Score))
            {
                if (all[end].Positive)
                {
                    groupPositives++;
                }
                else
                {
                    groupNegatives++;
                }

                end++;
            }

            wins += groupPositives * (negativesBelow + groupNegatives / 2.0);
            negativesBelow += groupNegatives;
            start = end;
        }

        return wins / ((double)positives.Count * negatives.Count);
    }

    /// <summary>
    /// The best balanced accuracy ((TPR + TNR) / 2) of any threshold rule on the score, in either
    /// direction (the attacker may learn that low scores mean "linked"): 0.5 + max |TPR − FPR| / 2.
    /// Thresholds only fall between distinct scores, so ties cannot be split.
    /// </summary>
    public static double BestBalancedAccuracy(IReadOnlyList<double> positives, IReadOnlyList<double> negatives)
    {
        if (positives.Count == 0 || negatives.Count == 0)
        {
            return double.NaN;
        }

        var p = positives.Order().ToArray();
        var n = negatives.Order().ToArray();
        int i = 0, j = 0;
        var best = 0.0;
        while (i < p.Length || j < n.Length)
        {
            // Move the threshold past the next distinct score, taking all of its ties.
            var next = i < p.Length && (j >= n.Length || p[i] <= n[j]) ? p[i] : n[j];
            while (i < p.Length && p[i] <= next)
            {
                i++;
            }

            while (j < n.Length && n[j] <= next)
            {
                j++;
            }

            // Rule "score > threshold": TPR = share of positives above, FPR = share of negatives above.
            var tpr = 1 - (double)i / p.Length;
            var fpr = 1 - (double)j / n.Length;
            best = Math.Max(best, Math.Abs(tpr - fpr));
        }

        return 0.5 + best / 2;
    }

    /// <summary>Shannon entropy in bits of the distribution proportional to <paramref name="weights"/> (non-negative, not all zero).</summary>
    public static double Entropy(IEnumerable<double> weights)
    {
        var entropy = new EntropyAccumulator();
        foreach (var w in weights)
        {
            entropy.Add(w);
        }

        return entropy.Bits;
    }

    /// <summary>Pearson's correlation coefficient; NaN when either side is constant.</summary>
    public static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count)
        {
            throw new ArgumentException("both series must have the same length", nameof(y));
        }

        var n = x.Count;
        if (n < 2)
        {
            return double.NaN;
        }

        double mx = x.Average(), my = y.Average();
        double sxy = 0, sxx = 0, syy = 0;
        for (var i = 0; i < n; i++)
        {
            double dx = x[i] - mx, dy = y[i] - my;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }

        return sxx == 0 || syy == 0 ? double.NaN : sxy / Math.Sqrt(sxx * syy);
    }

    /// <summary>The nearest-rank percentile (0–100) of unsorted values.</summary>
    public static double Percentile(IReadOnlyList<double> values, double percentile)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        return PercentileOfSorted(sorted, percentile);
    }

    public static double PercentileOfSorted(IReadOnlyList<double> sorted, double percentile)
    {
        var rank = (int)Math.Ceiling(percentile / 100 * sorted.Count) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Count - 1)];
    }
}

/// <summary>Entropy of a distribution given by unnormalized weights, one at a time, without keeping them.</summary>
public struct EntropyAccumulator
{
    private double _total;
    private double _sumWLogW;

    public void Add(double weight)
    {
        if (weight < 0 || double.IsNaN(weight))
        {
            throw new ArgumentOutOfRangeException(nameof(weight), "weights must be non-negative");
        }

        if (weight > 0)
        {
            _total += weight;
            _sumWLogW += weight * Math.Log2(weight);
        }
    }

    /// <summary>Whether any weight was positive.</summary>
    public readonly bool HasMass => _total > 0;

    /// <summary>H = −Σ (w/Z) log2(w/Z) = log2 Z − (Σ w log2 w) / Z.</summary>
    public readonly double Bits => _total > 0
        ? Math.Max(0, Math.Log2(_total) - _sumWLogW / _total)
        : throw new InvalidOperationException("at least one weight must be positive");
}
