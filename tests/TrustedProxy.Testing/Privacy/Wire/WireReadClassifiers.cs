namespace TrustedProxy.Testing.Privacy.Wire;

/// <summary>
/// The attacker on the read side. Every object GET of the read phase is scored by one observable
/// formed from what the cloud received (the tap's requests: times, keys, verbs, headers; the write
/// order from the PUTs before), and the score's AUC is taken with wanted reads (a request waited for
/// the object) as positives and the reads of cover streams as negatives, each read weighted so that
/// every stream counts once (a few large studies would otherwise be the whole sample). (A request's padding comes
/// from the request's own window, so it is like the wanted reads by construction; leaving it out
/// makes the test one of the cover model alone.)
/// Ground truth is read only to label. Epochs are what the cloud sees: the reads that share a time.
/// </summary>
public static class WireReadClassifiers
{
    /// <summary>How far back the distance classifier looks: every object read in the epochs of the last five minutes.</summary>
    public static readonly TimeSpan RecentWindow = TimeSpan.FromMinutes(5);

    public static IReadOnlyList<WireClassifierResult> All(IReadOnlyList<TappedRequest> requests, IReadOnlyList<ReadTruth> truth, TimeSpan epoch)
    {
        var all = ReadView.Of(requests, truth, epoch);
        var view = all with { Reads = all.Reads.Where(r => r.Wanted || r.Cover).ToList() };
        var wanted = view.Reads.Select(r => r.Wanted).ToList();
        var weights = view.Reads.Select(r => r.Weight).ToList();
        WireClassifierResult Score(string name, IReadOnlyList<bool> positive, double[] scores, string detail = "") => Weighted(name, positive, scores, weights, detail);
        var names = view.Reads.SelectMany(r => r.Requests.SelectMany(q => q.Headers.Select(h => h.Key))).Distinct().Where(n => !WireClassifiers.ExcludedHeaderValues.Contains(n)).Order(StringComparer.Ordinal).ToList();
        var headerValues = names.Select(name => Score(
            "read: header values (worst header)",
            wanted,
            WireClassifiers.Categorical(view.Reads.Select(r => string.Join("\n", r.Requests.SelectMany(q => q.Headers.Where(h => h.Key == name).Select(h => h.Value)).Distinct().Order(StringComparer.Ordinal)) is { Length: > 0 } v ? v : "<absent>").ToList()),
            name)).ToList();
        return
        [
            Score("read: requests per object", wanted, view.Reads.Select(r => (double)r.Requests.Count).ToArray()),
            Score("read: verb sequence", wanted, WireClassifiers.Categorical(view.Reads.Select(r => string.Join(",", r.Requests.Select(q => q.Method))).ToList())),
            Score("read: header name set", wanted, WireClassifiers.Categorical(view.Reads.Select(r => string.Join(",", r.Requests.SelectMany(q => q.Headers.Select(h => h.Key)).Distinct().Order(StringComparer.Ordinal))).ToList())),
            headerValues.MaxBy(r => r.Separation) ?? new WireClassifierResult("read: header values (worst header)", double.NaN, 0, 0, "no headers"),
            Score("read: age at read", wanted, view.Reads.Select(r => (double)r.Age).ToArray()),
            Score("read: distance to recent reads", wanted, view.Reads.Select(r => (double)r.Distance).ToArray()),
            Score("read: epoch volume", wanted, view.Reads.Select(r => (double)r.EpochVolume).ToArray()),
            Score("read: burst length", wanted, view.Reads.Select(r => (double)r.BurstLength).ToArray()),
            Score("read: burst size", wanted, view.Reads.Select(r => (double)r.BurstSize).ToArray()),
            Weighted("stream start: gap before its epoch", view.Starts.Select(s => s.Wanted).ToList(), view.Starts.Select(s => s.Gap.TotalSeconds).ToArray(), view.Starts.Select(_ => 1.0).ToList()),
        ];
    }

    /// <summary>The weighted AUC of a score; Real and Cover in the result count the streams on each side.</summary>
    public static WireClassifierResult Weighted(string name, IReadOnlyList<bool> positive, double[] scores, IReadOnlyList<double> weights, string detail = "")
    {
        var positives = scores.Select((s, i) => (s, weights[i])).Where((_, i) => positive[i]).ToList();
        var negatives = scores.Select((s, i) => (s, weights[i])).Where((_, i) => !positive[i]).ToList();
        return new WireClassifierResult(name, Estimators.WeightedAuc(positives, negatives), (int)Math.Round(positives.Sum(p => p.Item2)), (int)Math.Round(negatives.Sum(n => n.Item2)), detail);
    }

    /// <summary>One object read as the cloud saw it, with the observables formed from it and the label.</summary>
    public sealed record Read(bool Wanted, bool Cover, IReadOnlyList<TappedRequest> Requests, long Age, long Distance, int EpochVolume, int BurstLength, int BurstSize)
    {
        /// <summary>1 / the reads of its kind in its stream: every stream weighs one.</summary>
        public double Weight { get; init; } = 1;
    }

    /// <summary>The first epoch of a stream (wanted: a request's), and the gap before it to the last epoch with any read.</summary>
    public sealed record StreamStart(bool Wanted, TimeSpan Gap);

    /// <summary>The read phase as the cloud saw it.</summary>
    public sealed record ReadView(IReadOnlyList<Read> Reads, IReadOnlyList<StreamStart> Starts)
    {
        public static ReadView Of(IReadOnlyList<TappedRequest> requests, IReadOnlyList<ReadTruth> truth, TimeSpan epoch)
        {
            var writeOrder = new Dictionary<string, int>();
            foreach (var put in requests.Where(r => r.Method == "PUT" && r.Key is not null && r.Status is >= 200 and < 300))
            {
                writeOrder.TryAdd(put.Key!, writeOrder.Count);
            }

            var label = truth.GroupBy(t => (t.At, t.Key)).ToDictionary(g => g.Key, g => (Wanted: g.Any(t => t.Wanted), Cover: g.All(t => t.Stream < 0), Stream: g.First().Stream));
            var perStream = truth.GroupBy(t => (t.Stream, t.Wanted)).ToDictionary(g => g.Key, g => g.Count());
            var firstRead = truth.Min(t => (DateTimeOffset?)t.At) ?? DateTimeOffset.MaxValue;

            // Requests of the read phase by epoch (their time) and object, in arrival order.
            var epochs = requests.Where(r => r.At >= firstRead && r.Key is not null && r.Method is "GET" or "HEAD")
                .GroupBy(r => r.At).OrderBy(g => g.Key).ToList();
            var epochTimes = epochs.Select(g => g.Key).ToList();

            // Bursts: runs of epochs no more than one and a half periods apart.
            var burstOf = new int[epochTimes.Count];
            var burstLengths = new List<int>();
            var burstSizes = new List<int>();
            for (var i = 0; i < epochTimes.Count; i++)
            {
                if (i == 0 || epochTimes[i] - epochTimes[i - 1] > epoch * 1.5)
                {
                    burstLengths.Add(0);
                    burstSizes.Add(0);
                }

                burstOf[i] = burstLengths.Count - 1;
                burstLengths[^1]++;
                burstSizes[^1] += epochs[i].Select(r => r.Key).Distinct().Count();
            }

            var reads = new List<Read>();
            var recent = new SortedSet<(long Position, long Seq)>();
            var window = new Queue<(DateTimeOffset At, long Position, long Seq)>();
            long seq = 0;
            for (var i = 0; i < epochs.Count; i++)
            {
                while (window.Count > 0 && window.Peek().At < epochs[i].Key - RecentWindow)
                {
                    var (_, p, q) = window.Dequeue();
                    recent.Remove((p, q));
                }

                var objects = epochs[i].GroupBy(r => r.Key!).ToList();
                var volume = objects.Count;
                foreach (var obj in objects)
                {
                    var position = writeOrder.GetValueOrDefault(obj.Key, -1);
                    var below = recent.GetViewBetween((long.MinValue, long.MinValue), (position, long.MaxValue));
                    var above = recent.GetViewBetween((position, long.MinValue), (long.MaxValue, long.MaxValue));
                    var distance = Math.Min(below.Count > 0 ? position - below.Max.Position : long.MaxValue, above.Count > 0 ? above.Min.Position - position : long.MaxValue);
                    var (isWanted, isCover, stream) = label.GetValueOrDefault((epochs[i].Key, obj.Key));
                    reads.Add(new Read(isWanted, isCover, obj.ToList(), writeOrder.Count - position, distance, volume, burstLengths[burstOf[i]], burstSizes[burstOf[i]])
                    {
                        Weight = 1.0 / Math.Max(1, perStream.GetValueOrDefault((stream, isWanted))),
                    });
                }

                // An epoch's own reads count from the next epoch on: within one, they come in one shuffled plan.
                foreach (var obj in objects)
                {
                    var position = writeOrder.GetValueOrDefault(obj.Key, -1);
                    recent.Add((position, seq));
                    window.Enqueue((epochs[i].Key, position, seq++));
                }
            }

            var starts = truth.GroupBy(t => t.Stream).Select(g => (Wanted: g.Key > 0, At: g.Min(t => t.At))).ToList();
            var startList = new List<StreamStart>();
            foreach (var (isWanted, at) in starts)
            {
                var index = epochTimes.BinarySearch(at);
                if (index > 0)
                {
                    startList.Add(new StreamStart(isWanted, at - epochTimes[index - 1]));
                }
            }

            return new ReadView(reads, startList);
        }
    }
}
