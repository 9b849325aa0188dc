using System.Diagnostics;

namespace TrustedProxy.Testing.Privacy.Wire;

/// <summary>
/// The attacker on the read side: each group read (a slot of the read loop, as the cloud sees it: the
/// requests it made, one after the other) scored by one observable, wanted (positive) against cover
/// (negative). Slots that made no request are invisible to the cloud and left out.
/// </summary>
public static class WireReadClassifiers
{
    public static IReadOnlyList<WireClassifierResult> All(IReadOnlyList<TappedRequest> requests, IReadOnlyList<ReadSlot> slots)
    {
        var bySequence = requests.ToDictionary(r => r.Sequence);
        var reads = slots
            .Select(s => (s.Wanted, Requests: Enumerable.Range(0, (int)(s.To - s.From)).Select(i => bySequence.GetValueOrDefault(s.From + i)).OfType<TappedRequest>().ToList()))
            .Where(s => s.Requests.Count > 0)
            .ToList();
        var wanted = reads.Select(r => r.Wanted).ToList();
        var names = reads.SelectMany(r => r.Requests.SelectMany(q => q.Headers.Select(h => h.Key))).Distinct().Where(n => !WireClassifiers.ExcludedHeaderValues.Contains(n)).Order(StringComparer.Ordinal).ToList();
        var headerValues = names.Select(name => Score(
            "group read: header values (worst header)",
            wanted,
            WireClassifiers.Categorical(reads.Select(r => string.Join("\n", r.Requests.SelectMany(q => q.Headers.Where(h => h.Key == name).Select(h => h.Value)).Distinct().Order(StringComparer.Ordinal)) is { Length: > 0 } v ? v : "<absent>").ToList()),
            name)).ToList();
        return
        [
            Score("group read: requests", wanted, reads.Select(r => (double)r.Requests.Count).ToArray()),
            Score("group read: verb sequence", wanted, WireClassifiers.Categorical(reads.Select(r => string.Join(",", r.Requests.Select(q => q.Method))).ToList())),
            Score("group read: header name set", wanted, WireClassifiers.Categorical(reads.Select(r => string.Join(",", r.Requests.SelectMany(q => q.Headers.Select(h => h.Key)).Distinct().Order(StringComparer.Ordinal))).ToList())),
            headerValues.MaxBy(r => r.Separation)!,
            Score("group read: duration (wall clock)", wanted, Durations(reads.Select(r => r.Requests).ToList())),
        ];
    }

    /// <summary>
    /// Wall-clock time from a group read's first request to its last, as the sum of the gaps between
    /// its requests with each gap clipped at the 90th percentile of all gaps: a stall of the machine
    /// (a collection, another process) then cannot swamp what the proxy itself does between requests.
    /// </summary>
    public static double[] Durations(IReadOnlyList<IReadOnlyList<TappedRequest>> reads)
    {
        var gaps = reads.Select(r => r.Zip(r.Skip(1), (a, b) => Stopwatch.GetElapsedTime(a.WallTimestamp, b.WallTimestamp).TotalMilliseconds).ToList()).ToList();
        var all = gaps.SelectMany(g => g).ToList();
        var cap = all.Count == 0 ? 0 : Estimators.Percentile(all, 90);
        return gaps.Select(g => g.Sum(x => Math.Min(x, cap))).ToArray();
    }

    /// <summary>Age of what a group read reads: the mean number of writes since each object read was written (an attacker's view of "how far back").</summary>
    public static WireClassifierResult Age(IReadOnlyList<TappedRequest> requests, IReadOnlyList<ReadSlot> slots)
    {
        var writeOrder = requests.Where(r => r.Method == "PUT" && r.Key is not null && r.Status is >= 200 and < 300).Select((r, i) => (r.Key!, i)).GroupBy(p => p.Item1).ToDictionary(g => g.Key, g => g.First().i);
        var lastWrite = writeOrder.Count;
        var bySequence = requests.ToDictionary(r => r.Sequence);
        var reads = slots
            .Select(s => (s.Wanted, Keys: Enumerable.Range(0, (int)(s.To - s.From)).Select(i => bySequence.GetValueOrDefault(s.From + i)).OfType<TappedRequest>().Where(q => q.Method == "GET" && q.Key is not null && writeOrder.ContainsKey(q.Key)).Select(q => q.Key!).ToList()))
            .Where(s => s.Keys.Count > 0)
            .ToList();
        return Score("group read: age in writes", reads.Select(r => r.Wanted).ToList(), reads.Select(r => r.Keys.Average(k => (double)(lastWrite - writeOrder[k]))).ToArray());
    }

    private static WireClassifierResult Score(string name, IReadOnlyList<bool> wanted, double[] scores, string detail = "")
    {
        var positives = scores.Where((_, i) => wanted[i]).ToList();
        var negatives = scores.Where((_, i) => !wanted[i]).ToList();
        return new WireClassifierResult(name, positives.Count == 0 || negatives.Count == 0 ? double.NaN : Estimators.Auc(positives, negatives), positives.Count, negatives.Count, detail);
    }
}
