namespace TrustedProxy.Testing.Privacy;

/// <summary>How well one score separates same-patient pairs from the rest: AUC and the best threshold's balanced accuracy (chance: 0.5 for both).</summary>
public sealed record PairSignal(double Auc, double BalancedAccuracy)
{
    /// <summary>Distance from chance, whichever way the score points.</summary>
    public double Advantage => Math.Max(Math.Abs(Auc - 0.5), BalancedAccuracy - 0.5);
}

/// <summary>The pair attack within one attacker window (null: any two writes of the whole log).</summary>
public sealed record PairWindowResult(TimeSpan? Window, int Positives, int Negatives, PairSignal Time, PairSignal Size, PairSignal NamePrefix, PairSignal NameCloseness)
{
    public IEnumerable<(string Signal, PairSignal Result)> Signals =>
        [("time", Time), ("size", Size), ("name prefix", NamePrefix), ("name closeness", NameCloseness)];
}

/// <summary>
/// Attack (b): are two observed objects blocks of the same patient? Each pair of writes at most W
/// apart is scored by temporal proximity (−|Δt|), size (−|Δsize|, so equal sizes score highest) and
/// name pattern (shared hex prefix; closeness of the names as numbers). Positives are pairs of real
/// blocks of one patient; every other pair, dummies included, is a negative. The two classes are
/// sampled separately and uniformly among the pairs within W, since AUC and balanced accuracy do
/// not depend on how common positives are.
/// </summary>
public static class SamePatientPairAttack
{
    public static readonly IReadOnlyList<TimeSpan?> DefaultWindows =
        [TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(10), TimeSpan.FromHours(1), null];

    public static IReadOnlyList<PairWindowResult> Run(CloudLogView view, LogTruth truth, IReadOnlyList<TimeSpan?> windows, int pairsPerClass, Random random)
    {
        var names = view.Names.Select(CloudLogView.NameValue).ToArray();
        return windows.Select(w => RunWindow(view, truth, names, w, pairsPerClass, random)).ToList();
    }

    private static PairWindowResult RunWindow(CloudLogView view, LogTruth truth, double[] names, TimeSpan? window, int pairsPerClass, Random random)
    {
        var w = window?.TotalSeconds ?? double.PositiveInfinity;
        var positives = SamplePositives(view, truth, w, pairsPerClass, random);
        var negatives = SampleNegatives(view, truth, w, pairsPerClass, random);

        PairSignal Score(Func<int, int, double> score) => new(
            Estimators.Auc(positives.Select(p => score(p.I, p.J)).ToList(), negatives.Select(p => score(p.I, p.J)).ToList()),
            Estimators.BestBalancedAccuracy(positives.Select(p => score(p.I, p.J)).ToList(), negatives.Select(p => score(p.I, p.J)).ToList()));

        return new PairWindowResult(
            window,
            positives.Count,
            negatives.Count,
            Score((i, j) => -Math.Abs(view.Times[i] - view.Times[j])),
            Score((i, j) => -Math.Abs((double)view.Lengths[i] - view.Lengths[j])),
            Score((i, j) => CloudLogView.SharedPrefix(view.Names[i], view.Names[j])),
            Score((i, j) => -Math.Abs(names[i] - names[j])));
    }

    /// <summary>Uniform over same-patient pairs within w: each patient's writes in time order, pairs counted and drawn by cumulative weight.</summary>
    private static List<(int I, int J)> SamplePositives(CloudLogView view, LogTruth truth, double w, int count, Random random)
    {
        var byPatient = new Dictionary<int, List<int>>();
        for (var i = 0; i < view.Count; i++)
        {
            if (truth.Objects[i] is { } o)
            {
                if (!byPatient.TryGetValue(o.PatientId, out var list))
                {
                    byPatient[o.PatientId] = list = [];
                }

                list.Add(i);
            }
        }

        var order = new List<int>(view.Count);
        var reach = new List<long>(view.Count);
        foreach (var list in byPatient.Values)
        {
            var end = 0;
            for (var k = 0; k < list.Count; k++)
            {
                end = Math.Max(end, k + 1);
                while (end < list.Count && view.Times[list[end]] - view.Times[list[k]] <= w)
                {
                    end++;
                }

                order.Add(list[k]);
                reach.Add(end - k - 1);
            }
        }

        var cumulative = Cumulative(reach);
        var pairs = new List<(int, int)>(count);
        if (cumulative[^1] == 0)
        {
            return pairs;
        }

        for (var s = 0; s < count; s++)
        {
            var k = Draw(cumulative, random);
            var j = k + 1 + (int)random.NextInt64(reach[k]);
            pairs.Add((order[k], order[j]));
        }

        return pairs;
    }

    /// <summary>Uniform over all pairs within w, rejecting same-patient ones (they are rare except in the bursts of an uncached log).</summary>
    private static List<(int I, int J)> SampleNegatives(CloudLogView view, LogTruth truth, double w, int count, Random random)
    {
        var reach = new long[view.Count];
        var end = 0;
        for (var i = 0; i < view.Count; i++)
        {
            end = Math.Max(end, i + 1);
            while (end < view.Count && view.Times[end] - view.Times[i] <= w)
            {
                end++;
            }

            reach[i] = end - i - 1;
        }

        var cumulative = Cumulative(reach);
        var pairs = new List<(int, int)>(count);
        if (cumulative[^1] == 0)
        {
            return pairs;
        }

        for (var tries = 0; pairs.Count < count && tries < 100 * count; tries++)
        {
            var i = Draw(cumulative, random);
            var j = i + 1 + (int)random.NextInt64(reach[i]);
            if (!truth.SamePatient(i, j))
            {
                pairs.Add((i, j));
            }
        }

        return pairs;
    }

    private static long[] Cumulative(IReadOnlyList<long> weights)
    {
        var cumulative = new long[weights.Count + 1];
        for (var i = 0; i < weights.Count; i++)
        {
            cumulative[i + 1] = cumulative[i] + weights[i];
        }

        return cumulative;
    }

    /// <summary>An index i drawn with probability weight[i] / total, from the cumulative sums.</summary>
    private static int Draw(long[] cumulative, Random random)
    {
        var u = random.NextInt64(cumulative[^1]);
        int lo = 0, hi = cumulative.Length - 1;
        while (hi - lo > 1)
        {
            var mid = (lo + hi) >>> 1;
            if (cumulative[mid] <= u)
            {
                lo = mid;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }
}
