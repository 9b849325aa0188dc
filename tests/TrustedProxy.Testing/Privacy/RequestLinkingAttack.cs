namespace TrustedProxy.Testing.Privacy;

/// <summary>One score of a pair attack: its AUC and its best-threshold balanced accuracy (chance 0.5 for both).</summary>
public sealed record LinkSignal(string Name, double Auc, double BalancedAccuracy, int Positives = 0, int Negatives = 0)
{
    public static LinkSignal Of(string name, IReadOnlyList<double> positives, IReadOnlyList<double> negatives) =>
        new(name, Estimators.Auc(positives, negatives), Estimators.BestBalancedAccuracy(positives, negatives), positives.Count, negatives.Count);

    /// <summary>
    /// How far from 0.5 an AUC may lie and still be chance: four standard errors of an AUC at chance
    /// for these sample sizes (the Mann–Whitney variance), and never less than 0.05. The same rule as
    /// the wire classifiers'; with 600 pairs a side it is about ±0.066.
    /// </summary>
    public double ChanceBound => Math.Max(0.05, 4 * Math.Sqrt((Positives + Negatives + 1.0) / (12.0 * Math.Max(1, Positives) * Math.Max(1, Negatives))));

    public bool AtChance => double.IsNaN(Auc) || Math.Abs(Auc - 0.5) <= ChanceBound;
}

/// <summary>The request-side attacks at one attacker window.</summary>
/// <param name="Window">The attacker looks at reads in [t, t + Window] after a request at t.</param>
/// <param name="Positives">Same-record pairs scored.</param>
/// <param name="Negatives">Pairs of different patients scored.</param>
/// <param name="SameRecord">Two requests that share a record, against two requests of different patients.</param>
/// <param name="SamePatient">Two requests of one patient (any of their studies), against two of different patients.</param>
/// <param name="ReadToUpload">A single-instance request's reads scored against the arrival of its record, against another patient's record.</param>
/// <param name="RequestDensity">
/// The harness's own check, not an attack on the proxy: −|difference in the number of requests made
/// in the two windows|, same-record pairs against their negatives, from request times alone. It is at
/// chance when the negatives are matched fairly; were it not, volume would look like a signal.
/// </param>
/// <param name="FirstRequestTime">
/// The harness's other check: the time of a pair's first request (earlier scores higher), same-record
/// pairs against their negatives. A finite log holds more same-record pairs early (both requests
/// must fall inside it), while the store is small and every window's reads overlap more; matched by
/// gap alone, negatives came later, and that alone scored 0.57. At chance when they are matched in
/// time too.
/// </param>
public sealed record RequestWindowResult(TimeSpan Window, int Positives, int Negatives, IReadOnlyList<LinkSignal> SameRecord, IReadOnlyList<LinkSignal> SamePatient, LinkSignal ReadToUpload, LinkSignal RequestDensity, LinkSignal FirstRequestTime)
{
    public IEnumerable<LinkSignal> All => SameRecord.Concat(SamePatient).Append(ReadToUpload);
}

/// <summary>The intersection attack over the repeated requests for one record, at one window.</summary>
/// <param name="Window">The attacker's window after each request.</param>
/// <param name="Records">Records probed.</param>
/// <param name="Success">Share of probed records whose most frequently read object (ties split evenly) is one of the record's.</param>
/// <param name="Chance">The same for an object drawn uniformly from those read.</param>
/// <param name="RecordFrequency">Mean over probed records of the most frequent of the record's objects, in requests out of the probe count.</param>
/// <param name="OtherFrequency">Mean over probed records of the most frequent other object.</param>
public sealed record IntersectionResult(TimeSpan Window, int Records, double Success, double Chance, double RecordFrequency, double OtherFrequency);

/// <summary>Every request-side attack on one configuration's read log, and what it cost.</summary>
public sealed record RetrievalEvaluation(
    RetrievalConfiguration Configuration,
    int Requests,
    double ShareFromCloud,
    double ObjectReadsPerSecond,
    double MeanServiceSeconds,
    double P99ServiceSeconds,
    IReadOnlyList<RequestWindowResult> Windows,
    IReadOnlyList<IntersectionResult> Intersection)
{
    /// <summary>The signal and window furthest from chance (either side).</summary>
    public (TimeSpan Window, LinkSignal Signal) Worst =>
        Windows.SelectMany(w => w.All.Where(s => !double.IsNaN(s.Auc)).Select(s => (w.Window, s))).MaxBy(p => Math.Abs(p.s.Auc - 0.5));

    /// <summary>The intersection result that served the attacker best.</summary>
    public IntersectionResult BestIntersection => Intersection.MaxBy(i => i.Success - i.Chance)!;
}

/// <summary>
/// Attacks on the read log. The attacker knows when each request was made (a consultation is no
/// secret to a hospital insider) and looks at the reads in [t, t + W]; from those alone it scores:
/// <list type="bullet">
/// <item>overlap: the share of objects two requests' windows have in common (the same record read twice);</item>
/// <item>volume: −|difference in objects read| (a study's size);</item>
/// <item>relocation: for a later request, the most likely delay, under the upload schedule, of
/// any object it read that was written after the earlier request (a relocated copy coming back);</item>
/// <item>read-to-upload: the most likely delay from a record's arrival to any object read.</item>
/// </list>
/// The intersection attack counts, over the repeated requests for one record, how often each
/// object was read, and names the most frequent. Ground truth only scores.
/// </summary>
public static class RequestLinkingAttack
{
    public static readonly IReadOnlyList<TimeSpan> DefaultWindows = [TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(10), TimeSpan.FromHours(1)];

    public static RetrievalEvaluation Run(RetrievalLog log, IReadOnlyList<TimeSpan> windows, int pairsPerClass, int seed)
    {
        var random = new Random(seed);
        var writes = CloudLogView.FromObservations(log.Uploads.Observations);
        var index = new Dictionary<string, int>(writes.Count);
        for (var i = 0; i < writes.Count; i++)
        {
            index[writes.Names[i]] = i;
        }

        var readTimes = log.Reads.Select(r => writes.Seconds(r.At)).ToArray();
        var readObjects = log.Reads.Select(r => index[r.Name]).ToArray();
        var delays = new DelayDistribution(log.Uploads.Objects.Values.Select(o => (o.WrittenAt - o.ArrivedAt).TotalSeconds));

        // The attacker knows the hold too: a relocated copy is written U(0, hold) plus a schedule delay after the read.
        var hold = log.Configuration.RelocationHoldHours * 3600;
        var relocationDelays = hold <= 0 ? delays : new DelayDistribution(Enumerable.Range(0, 200_000).Select(_ => (random.NextDouble() * hold) + delays.Quantile(random.NextDouble())));
        var records = log.Uploads.Workload.Records;
        var requests = log.Requests;
        var ordinary = requests.Where(r => !r.Probe).ToList();

        var requestTimes = requests.Select(r => writes.Seconds(r.At)).Order().ToArray();
        int RequestsIn(RetrievalRequest request, TimeSpan window)
        {
            var t = writes.Seconds(request.At);
            return LowerBound(requestTimes, t + window.TotalSeconds + 1e-9) - LowerBound(requestTimes, t - 1e-3);
        }

        int[] ReadSet(RetrievalRequest request, TimeSpan window)
        {
            var t = writes.Seconds(request.At);
            // A millisecond of slack: instants went through DateTimeOffset and back.
            var from = LowerBound(readTimes, t - 1e-3);
            var to = LowerBound(readTimes, t + window.TotalSeconds + 1e-9);
            var set = readObjects.AsSpan(from, to - from).ToArray();
            Array.Sort(set);
            return Distinct(set);
        }

        // Pairs are sampled once, so every window scores the same pairs. Requests of one patient
        // come close together (consultations cluster after an upload), which the attacker may know
        // without the cloud; negatives are therefore matched to the positives' time gaps, so that
        // only what the reads add is scored.
        var sameRecord = SamplePairs(ordinary, (a, b) => a.Records.Intersect(b.Records).Any(), pairsPerClass, random);
        var samePatient = SamplePairs(ordinary, (a, b) => a.PatientId == b.PatientId, pairsPerClass, random);
        var recordNegatives = MatchedNegatives(ordinary, sameRecord, random);
        var patientNegatives = MatchedNegatives(ordinary, samePatient, random);

        // Read-to-upload: the decoy is another patient's record that arrived within 30 minutes of the true one.
        var singles = ordinary.Where(r => r.Records.Count == 1).OrderBy(_ => random.Next()).Take(pairsPerClass).ToList();
        var decoys = singles.Select(r =>
        {
            var own = records[(int)r.Records[0]];
            var from = UpperBoundArrival(records, own.ArrivedAt.AddMinutes(-30)) - 1;
            var to = UpperBoundArrival(records, own.ArrivedAt.AddMinutes(30));
            from = Math.Max(from, 0);
            for (var attempt = 0; attempt < 100; attempt++)
            {
                var other = records[random.Next(from, Math.Max(to, from + 1))];
                if (other.PatientId != own.PatientId)
                {
                    return other;
                }
            }

            return records[random.Next(records.Count)];
        }).ToList();

        var results = new List<RequestWindowResult>();
        foreach (var window in windows)
        {
            var sets = new Dictionary<int, int[]>();
            int[] Set(RetrievalRequest r) => sets.TryGetValue(r.Id, out var s) ? s : sets[r.Id] = ReadSet(r, window);

            double[] Score(IEnumerable<(RetrievalRequest A, RetrievalRequest B)> pairs, Func<RetrievalRequest, int[], RetrievalRequest, int[], double> score) =>
                pairs.Select(p => score(p.A, Set(p.A), p.B, Set(p.B))).ToArray();

            IReadOnlyList<LinkSignal> Signals(IReadOnlyList<(RetrievalRequest, RetrievalRequest)> positives, IReadOnlyList<(RetrievalRequest, RetrievalRequest)> negatives) =>
            [
                LinkSignal.Of("overlap", Score(positives, Overlap), Score(negatives, Overlap)),
                LinkSignal.Of("volume", Score(positives, Volume), Score(negatives, Volume)),
                LinkSignal.Of("relocation", Score(positives, Relocation), Score(negatives, Relocation)),
            ];

            double Overlap(RetrievalRequest a, int[] sa, RetrievalRequest b, int[] sb) =>
                sa.Length == 0 || sb.Length == 0 ? 0 : (double)IntersectCount(sa, sb) / Math.Min(sa.Length, sb.Length);

            double Volume(RetrievalRequest a, int[] sa, RetrievalRequest b, int[] sb) => -Math.Abs(sa.Length - sb.Length);

            double Relocation(RetrievalRequest a, int[] sa, RetrievalRequest b, int[] sb)
            {
                var ta = writes.Seconds(a.At);
                var tb = writes.Seconds(b.At);
                var best = 0.0;
                foreach (var o in sb)
                {
                    var w = writes.Times[o];
                    if (w > ta && w <= tb)
                    {
                        best = Math.Max(best, relocationDelays.Density(w - ta));
                    }
                }

                return best;
            }

            double Arrival(RetrievalRequest request, UploadedRecord record)
            {
                var a = writes.Seconds(record.ArrivedAt);
                var best = 0.0;
                foreach (var o in Set(request))
                {
                    best = Math.Max(best, delays.Density(writes.Times[o] - a));
                }

                return best;
            }

            var own = singles.Select(r => Arrival(r, records[(int)r.Records[0]])).ToArray();
            var other = singles.Select((r, i) => Arrival(r, decoys[i])).ToArray();
            double Density(RetrievalRequest a, int[] sa, RetrievalRequest b, int[] sb) => -Math.Abs(RequestsIn(a, window) - RequestsIn(b, window));
            double Early(RetrievalRequest a, int[] sa, RetrievalRequest b, int[] sb) => -writes.Seconds(a.At);
            results.Add(new RequestWindowResult(
                window, sameRecord.Count, recordNegatives.Count, Signals(sameRecord, recordNegatives), Signals(samePatient, patientNegatives), LinkSignal.Of("read-to-upload", own, other),
                LinkSignal.Of("request density", Score(sameRecord, Density), Score(recordNegatives, Density)),
                LinkSignal.Of("first request time", Score(sameRecord, Early), Score(recordNegatives, Early))));
        }

        var intersection = windows.Select(w => Intersect(log, requests.Where(r => r.Probe).ToList(), r => ReadSet(r, w), writes, w, random)).ToList();
        var span = readTimes.Length == 0 ? 1 : Math.Max(1, readTimes[^1] - readTimes[0]);
        return new RetrievalEvaluation(
            log.Configuration,
            requests.Count,
            (double)log.ServedFromCloud.Count(c => c) / Math.Max(1, requests.Count),
            readTimes.Length / span,
            log.MeanServiceSeconds,
            log.P99ServiceSeconds,
            results,
            intersection);
    }

    private static IntersectionResult Intersect(RetrievalLog log, IReadOnlyList<RetrievalRequest> probes, Func<RetrievalRequest, int[]> readSet, CloudLogView writes, TimeSpan window, Random random)
    {
        double success = 0, chance = 0, recordFrequency = 0, otherFrequency = 0;
        var subjects = probes.GroupBy(p => p.Records[0]).ToList();
        foreach (var subject in subjects)
        {
            var mine = log.RecordObjects[subject.Key];
            var counts = new Dictionary<int, int>();
            foreach (var request in subject)
            {
                foreach (var o in readSet(request))
                {
                    counts[o] = counts.GetValueOrDefault(o) + 1;
                }
            }

            if (counts.Count == 0)
            {
                continue;
            }

            bool Mine(int o) => mine.Contains(writes.Names[o]);
            var top = counts.Values.Max();
            var tied = counts.Where(c => c.Value == top).ToList();
            success += (double)tied.Count(c => Mine(c.Key)) / tied.Count;
            chance += (double)counts.Keys.Count(Mine) / counts.Count;
            recordFrequency += counts.Where(c => Mine(c.Key)).Select(c => c.Value).DefaultIfEmpty(0).Max();
            otherFrequency += counts.Where(c => !Mine(c.Key)).Select(c => c.Value).DefaultIfEmpty(0).Max();
        }

        var n = Math.Max(1, subjects.Count);
        return new IntersectionResult(window, subjects.Count, success / n, chance / n, recordFrequency / n, otherFrequency / n);
    }

    private static List<(RetrievalRequest, RetrievalRequest)> SamplePairs(IReadOnlyList<RetrievalRequest> requests, Func<RetrievalRequest, RetrievalRequest, bool> related, int count, Random random)
    {
        // Related requests share a patient, so only pairs within a patient are candidates.
        var pairs = new List<(RetrievalRequest, RetrievalRequest)>();
        foreach (var patient in requests.GroupBy(r => r.PatientId))
        {
            var list = patient.OrderBy(r => r.At).ToList();
            for (var i = 0; i < list.Count; i++)
            {
                for (var j = i + 1; j < list.Count; j++)
                {
                    if (related(list[i], list[j]))
                    {
                        pairs.Add((list[i], list[j]));
                    }
                }
            }
        }

        return pairs.OrderBy(_ => random.Next()).Take(count).ToList();
    }

    // For each positive pair, a pair of different patients with about the same time gap: a random
    // request, and the request nearest to it plus the gap.
    /// <summary>
    /// For each positive, a pair of requests of different patients with about the same gap, drawn
    /// uniformly among such pairs: the first request at random, the second at random among the
    /// requests within a tolerance of that gap after it, kept with a chance proportional to how
    /// many there were. Taking "the first request after first + gap" instead would pick, more
    /// often, a request that follows a long quiet spell (length-biased, as a Poisson slot is), so
    /// that the negatives' windows would hold fewer requests than the positives' and anything that
    /// counts reads in a window would look like a signal.
    /// </summary>
    private static List<(RetrievalRequest, RetrievalRequest)> MatchedNegatives(IReadOnlyList<RetrievalRequest> requests, IReadOnlyList<(RetrievalRequest A, RetrievalRequest B)> positives, Random random)
    {
        // The tolerance is tight (windows of seconds compare requests seconds apart); a draw with k
        // candidates is kept with chance k / Crowd (always past it), which makes every pair about
        // equally likely whatever the density around it. The first request is drawn within
        // SameTime of the positive's: the store grows through the log, and pairs early in it
        // (more of the positives: both requests must fall inside the log) see every window's
        // reads overlap more, which is the store's size, not a link.
        const int Crowd = 2;
        var sameTime = TimeSpan.FromHours(1);
        var sorted = requests.OrderBy(r => r.At).ToList();
        var times = sorted.Select(r => r.At.UtcTicks).ToArray();
        var pairs = new List<(RetrievalRequest, RetrievalRequest)>();
        var candidates = new List<RetrievalRequest>();
        foreach (var (a, b) in positives)
        {
            var gap = b.At - a.At;
            var tolerance = TimeSpan.FromSeconds(0.5) + (gap * 0.02);
            var near = LowerBound(times, (a.At - sameTime).UtcTicks);
            var far = LowerBound(times, (a.At + sameTime).UtcTicks + 1);
            for (var attempt = 0; attempt < 20_000; attempt++)
            {
                var first = sorted[random.Next(near, far)];
                var from = LowerBound(times, (first.At + gap - tolerance).UtcTicks);
                var to = LowerBound(times, (first.At + gap + tolerance).UtcTicks + 1);
                candidates.Clear();
                for (var i = from; i < to; i++)
                {
                    if (sorted[i].PatientId != first.PatientId && sorted[i].Id != first.Id)
                    {
                        candidates.Add(sorted[i]);
                    }
                }

                if (candidates.Count == 0 || random.NextDouble() * Crowd > candidates.Count)
                {
                    continue;
                }

                var second = candidates[random.Next(candidates.Count)];
                pairs.Add(first.At <= second.At ? (first, second) : (second, first));
                break;
            }
        }

        return pairs;
    }

    /// <summary>The first index whose value is not below <paramref name="value"/> (Array.BinarySearch names any of equal ones).</summary>
    private static int LowerBound<T>(T[] sorted, T value)
        where T : IComparable<T>
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (sorted[mid].CompareTo(value) < 0)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    private static int UpperBoundArrival(IReadOnlyList<UploadedRecord> records, DateTimeOffset at)
    {
        int lo = 0, hi = records.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (records[mid].ArrivedAt <= at)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    private static int[] Distinct(int[] sorted)
    {
        if (sorted.Length == 0)
        {
            return sorted;
        }

        var n = 1;
        for (var i = 1; i < sorted.Length; i++)
        {
            if (sorted[i] != sorted[n - 1])
            {
                sorted[n++] = sorted[i];
            }
        }

        return sorted[..n];
    }

    private static int IntersectCount(int[] a, int[] b)
    {
        int i = 0, j = 0, n = 0;
        while (i < a.Length && j < b.Length)
        {
            if (a[i] < b[j])
            {
                i++;
            }
            else if (a[i] > b[j])
            {
                j++;
            }
            else
            {
                n++;
                i++;
                j++;
            }
        }

        return n;
    }
}
