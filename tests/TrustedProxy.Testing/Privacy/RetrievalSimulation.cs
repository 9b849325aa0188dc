using TrustedProxy.ObliviousRetrieval;
using TrustedProxy.Storage;

namespace TrustedProxy.Testing.Privacy;

/// <summary>How the proxy reads from the cloud in a retrieval configuration.</summary>
public enum ReadMode
{
    /// <summary>Obliviousness off: a request reads exactly its records' objects, at once.</summary>
    Direct,

    /// <summary>Every member of the wanted objects' retrieval groups, at once (schedule <c>immediate</c>).</summary>
    GroupsImmediate,

    /// <summary>The epoch schedule: requests as padded streams among cover streams (the default).</summary>
    Epochs,
}

/// <summary>A cloud-side retrieval configuration under test.</summary>
/// <param name="Mode">How reads are made.</param>
/// <param name="GroupSize">N.</param>
/// <param name="GroupsPerEpoch">Groups each stream reads per epoch.</param>
/// <param name="CoverPerWanted">Cover streams per wanted stream.</param>
/// <param name="Relocate">A record read from the cloud moves to fresh objects (only with the upload cache on).</param>
/// <param name="ObliviousTransfer">Consumers fetch single instances by OT over their study: the proxy reads the whole study.</param>
/// <param name="RelocationHoldHours">A relocated block enters the upload schedule after a further uniform delay of up to this many hours.</param>
/// <param name="LocalStreams">A request served locally still starts a stream of its size class (epochs only).</param>
/// <param name="MinStreamGroups">The smallest size class a stream is padded to (epochs only).</param>
/// <param name="StreamFloorMegabytes">The least a stream reads (epochs only); null: the product's rule (the declared retrieval size).</param>
/// <param name="PaddingAvoidsStudy">A request's padding leaves out the other records of its study (epochs only), as the server's does; false is the earlier rule.</param>
public sealed record RetrievalConfiguration(ReadMode Mode, int GroupSize = 1, int GroupsPerEpoch = 64, double CoverPerWanted = 1, bool Relocate = true, bool ObliviousTransfer = false, double RelocationHoldHours = 0, bool LocalStreams = false, int MinStreamGroups = 8, double? StreamFloorMegabytes = null, bool PaddingAvoidsStudy = true)
{
    public static readonly RetrievalConfiguration Defaults = FromOptions(new ObliviousRetrievalOptions());

    public static RetrievalConfiguration FromOptions(ObliviousRetrievalOptions o) => new(
        o.Schedule == ObliviousRetrievalOptions.Immediate ? ReadMode.GroupsImmediate : ReadMode.Epochs, o.GroupSize, o.GroupsPerEpoch, o.CoverPerWanted, o.RelocateAfterRead, RelocationHoldHours: o.RelocationHoldSeconds / 3600, LocalStreams: o.StreamForLocalReads, MinStreamGroups: o.MinStreamGroups, StreamFloorMegabytes: o.StreamFloorMegabytes);

    /// <summary>The options the server would run with (the declared load is the simulation's own, as a site would declare it).</summary>
    public ObliviousRetrievalOptions Options(double retrievalsPerDay, double retrievalMegabytes) => new ObliviousRetrievalOptions() with
    {
        GroupSize = GroupSize,
        GroupsPerEpoch = GroupsPerEpoch,
        CoverPerWanted = CoverPerWanted,
        DeclaredRetrievalsPerDay = retrievalsPerDay,
        DeclaredRetrievalMegabytes = Math.Max(0.01, retrievalMegabytes),
        StreamForLocalReads = LocalStreams,
        MinStreamGroups = MinStreamGroups,
        StreamFloorMegabytes = StreamFloorMegabytes,
    };

    public string Label =>
        (Mode switch
        {
            ReadMode.Direct => "direct reads (oblivious off)",
            ReadMode.GroupsImmediate => $"groups N={GroupSize}, immediate",
            _ => $"epochs, N={GroupSize}, {GroupsPerEpoch} groups/epoch, cover ×{CoverPerWanted:0.##}",
        })
        + (Mode != ReadMode.Direct && !Relocate ? ", no relocation" : "")
        + (ObliviousTransfer ? ", OT mode" : "")
        + (Mode != ReadMode.Direct && Relocate ? $", relocation held U(0, {RelocationHoldHours:0.#} h)" : "")
        + (Mode == ReadMode.Epochs && !LocalStreams ? ", no stream for local reads" : "")
        + (Mode == ReadMode.Epochs && MinStreamGroups != Defaults.MinStreamGroups ? $", smallest class {MinStreamGroups} groups" : "")
        + (Mode == ReadMode.Epochs && StreamFloorMegabytes != Defaults.StreamFloorMegabytes ? $", stream floor {StreamFloorMegabytes:0.#} MB" : "")
        + (Mode == ReadMode.Epochs && !PaddingAvoidsStudy ? ", padding among its study's other records" : "")
        + (this == Defaults ? " (**defaults**)" : "");
}

/// <summary>The consumers' traffic: how often and when studies are consulted after upload.</summary>
public sealed record RetrievalWorkloadOptions
{
    /// <summary>Mean consultations per study (Poisson).</summary>
    public double RetrievalsPerStudy { get; init; } = 1.5;

    /// <summary>Share of consultations that fetch one instance (a key image) rather than the whole study.</summary>
    public double InstanceShare { get; init; } = 0.5;

    /// <summary>Median time from the end of a study's upload to a consultation (log-normal).</summary>
    public TimeSpan MedianDelay { get; init; } = TimeSpan.FromHours(12);

    public double DelaySigma { get; init; } = 1.2;

    /// <summary>Records probed by the intersection attack, each fetched <see cref="ProbeRequests"/> times.</summary>
    public int ProbeRecords { get; init; } = 5;

    public int ProbeRequests { get; init; } = 100;

    public int Seed { get; init; } = 3;
}

/// <summary>One consultation: who asked for what, when. Ground truth, for scoring.</summary>
/// <param name="Id">Sequence number, in time order.</param>
/// <param name="At">When the consumer asked.</param>
/// <param name="StudyId">The study consulted.</param>
/// <param name="PatientId">Its patient.</param>
/// <param name="Records">The records asked for.</param>
/// <param name="Probe">One of the repeated requests of the intersection attack.</param>
public sealed record RetrievalRequest(int Id, DateTimeOffset At, int StudyId, int PatientId, IReadOnlyList<long> Records, bool Probe);

/// <summary>A simulated read log beside the write log it was read from.</summary>
public sealed class RetrievalLog(
    SimulatedLog uploads, RetrievalConfiguration configuration, IReadOnlyList<RetrievalRequest> requests, IReadOnlyList<CloudObservation> reads,
    IReadOnlyDictionary<long, IReadOnlySet<string>> recordObjects, IReadOnlyList<bool> servedFromCloud, double meanServiceSeconds, double p99ServiceSeconds)
{
    public SimulatedLog Uploads => uploads;

    public RetrievalConfiguration Configuration => configuration;

    public IReadOnlyList<RetrievalRequest> Requests => requests;

    /// <summary>Every read the cloud saw, in order.</summary>
    public IReadOnlyList<CloudObservation> Reads => reads;

    /// <summary>Truth: every object that ever held each record (relocation adds some).</summary>
    public IReadOnlyDictionary<long, IReadOnlySet<string>> RecordObjects => recordObjects;

    /// <summary>Truth, by request: whether any of its records came from the cloud (else all from the proxy's cache).</summary>
    public IReadOnlyList<bool> ServedFromCloud => servedFromCloud;

    /// <summary>Mean time from a request to its last cloud read, over requests that read the cloud.</summary>
    public double MeanServiceSeconds => meanServiceSeconds;

    public double P99ServiceSeconds => p99ServiceSeconds;
}

/// <summary>
/// Replays consultations against a simulated upload log, the way the server reads: groups are
/// the write log cut into runs of N consecutive writes (<see cref="RetrievalGroups"/>, as the
/// release loop assigns them), the epoch schedule is the server's
/// <see cref="ReadSchedule"/> (a request's records one stream, as WADO-RS prefetches them), a record whose blocks are not all in the cloud yet is served from
/// the cache without a read, and a record read from the cloud is relocated: its new blocks take
/// the place of dummy writes after a delay drawn from the upload schedule's delays (under the
/// constant-rate upload schedule a waiting block takes a slot that would otherwise carry a dummy,
/// so the write log itself does not change). Reads are recorded as the cloud sees them.
/// </summary>
public static class RetrievalSimulation
{
    public static IReadOnlyList<RetrievalRequest> Requests(HospitalWorkload workload, RetrievalWorkloadOptions options, DateTimeOffset end)
    {
        var random = new Random(options.Seed);
        var byStudy = workload.Records.GroupBy(r => r.StudyId).ToDictionary(g => g.Key, g => g.ToList());
        var requests = new List<RetrievalRequest>();
        foreach (var study in workload.Studies)
        {
            var records = byStudy[study.Id];
            var uploaded = records[^1].ArrivedAt;
            for (var n = Poisson(random, options.RetrievalsPerStudy); n > 0; n--)
            {
                var delay = options.MedianDelay.TotalSeconds * Math.Exp(options.DelaySigma * Normal(random));
                var at = uploaded.AddSeconds(delay);
                if (at >= end)
                {
                    continue;
                }

                IReadOnlyList<long> wanted = random.NextDouble() < options.InstanceShare ? [records[random.Next(records.Count)].Id] : records.Select(r => r.Id).ToList();
                requests.Add(new RetrievalRequest(0, at, study.Id, study.PatientId, wanted, Probe: false));
            }
        }

        // The intersection attack's subjects: instances uploaded in the first quarter, fetched again and again afterwards.
        var early = workload.Records.Where(r => r.ArrivedAt < workload.Start + (end - workload.Start) / 4).ToList();
        for (var p = 0; p < options.ProbeRecords && early.Count > 0; p++)
        {
            var record = early[random.Next(early.Count)];
            var from = record.ArrivedAt.AddHours(1);
            for (var i = 0; i < options.ProbeRequests; i++)
            {
                var at = from + (end - from) * random.NextDouble();
                requests.Add(new RetrievalRequest(0, at, record.StudyId, record.PatientId, [record.Id], Probe: true));
            }
        }

        return requests.OrderBy(r => r.At).Select((r, i) => r with { Id = i }).ToList();
    }

    /// <summary>
    /// Replays the requests. Under the epoch schedule the cover model is the one a site has after
    /// weeks at this load: the run is made once with a model that learns fast (half-life of a day),
    /// and again, for the record, with cover drawn from what that first run learned.
    /// </summary>
    public static RetrievalLog Run(SimulatedLog log, IReadOnlyList<RetrievalRequest> requests, RetrievalConfiguration configuration, int seed)
    {
        if (configuration.Mode != ReadMode.Epochs)
        {
            return RunOnce(log, requests, configuration, seed, _ => null!).Log;
        }

        var (_, learned) = RunOnce(log, requests, configuration, seed + 100, options => new CoverModel(
            CoverModelSettings.From(options with { CoverModelHalfLifeDays = 1, CoverModelSnapshotHours = 24 }, log.Options.BlockSizeBytes), log.Start));
        var state = learned!.State();
        return RunOnce(log, requests, configuration, seed, options => new CoverModel(
            CoverModelSettings.From(options with { CoverModelHalfLifeDays = 1, CoverModelSnapshotHours = 1e5 }, log.Options.BlockSizeBytes),
            log.Start,
            state.Settled(log.Start))).Log;
    }

    private static (RetrievalLog Log, CoverModel? Cover) RunOnce(SimulatedLog log, IReadOnlyList<RetrievalRequest> requests, RetrievalConfiguration configuration, int seed, Func<ObliviousRetrievalOptions, CoverModel> model)
    {
        var random = new Random(seed);
        var view = CloudLogView.FromObservations(log.Observations);
        var truth = LogTruth.Align(view, log.Objects);
        var delays = new DelayDistribution(log.Objects.Values.Select(o => (o.WrittenAt - o.ArrivedAt).TotalSeconds));
        var workload = log.Workload;
        var relocate = configuration.Mode != ReadMode.Direct && configuration.Relocate && log.Options.Enabled;

        // Groups over the write order, as the release loop assigns them.
        var assign = new RetrievalGroups(configuration.GroupSize);
        var groupOf = new long[view.Count];
        var members = new List<List<int>>();
        for (var i = 0; i < view.Count; i++)
        {
            groupOf[i] = assign.Assign();
            if (groupOf[i] == members.Count)
            {
                members.Add([]);
            }

            members[(int)groupOf[i]].Add(i);
        }

        // Where each record is now, until when it is served from the cache, every object it ever had.
        var current = new Dictionary<long, int[]>();
        var cachedUntil = new Dictionary<long, double>();
        var ever = new Dictionary<long, HashSet<string>>();
        var freeDummies = new SortedSet<int>();
        foreach (var group in Enumerable.Range(0, view.Count).GroupBy(i => truth.Objects[i]?.RecordId ?? -1))
        {
            if (group.Key < 0)
            {
                freeDummies.UnionWith(group);
                continue;
            }

            var blocks = group.OrderBy(i => truth.Objects[i]!.Block).ToArray();
            current[group.Key] = blocks;
            cachedUntil[group.Key] = blocks.Max(i => view.Times[i]);
            ever[group.Key] = blocks.Select(i => view.Names[i]).ToHashSet();
        }

        var studyRecords = workload.Records.GroupBy(r => r.StudyId).ToDictionary(g => g.Key, g => g.Select(r => r.Id).ToList());
        var reads = new List<CloudObservation>();
        var fromCloud = new bool[requests.Count];
        var served = new double[requests.Count];
        var days = Math.Max(1e-3, (log.End - log.Start).TotalDays);
        var meanObjects = requests.Count == 0 ? 1 : requests.Average(r => r.Records.Sum(id => current.TryGetValue(id, out var b) ? b.Length : 0));
        var options = configuration.Options(requests.Count / days, meanObjects * log.Options.BlockSizeBytes / 1e6);
        var cover = configuration.Mode == ReadMode.Epochs ? model(options) : null;
        var schedule = cover is null ? null : new ReadSchedule(options, cover, new Random(seed + 1), view.Origin);
        var waitingFor = new Dictionary<long, List<(int Request, long Record)>>();
        var outstanding = new Dictionary<(int Request, long Record), int>();
        var pendingOfRequest = new int[requests.Count];

        void Read(IEnumerable<int> objects, double t)
        {
            var plan = objects.ToArray();
            random.Shuffle(plan);
            foreach (var i in plan)
            {
                reads.Add(new CloudObservation(view.Origin.AddSeconds(t), "get", view.Names[i], view.Lengths[i]));
            }
        }

        IEnumerable<int> WrittenMembers(long group, double t) => members[(int)group].Where(i => view.Times[i] <= t);

        void Relocate(long record, double t)
        {
            if (!relocate)
            {
                return;
            }

            var moved = new int[current[record].Length];
            for (var b = 0; b < moved.Length; b++)
            {
                var due = view.FirstAtOrAfter(t + (configuration.RelocationHoldHours * 3600 * random.NextDouble()) + delays.Quantile(random.NextDouble()));
                // (A view's Count walks it; Max and Min do not.)
                if (due >= view.Count || freeDummies.Count == 0 || freeDummies.Max < due)
                {
                    // The log ends before the new copy is out: the record waits in the cache (and is
                    // served from it) for the rest of the log, as the server would have it.
                    cachedUntil[record] = double.MaxValue;
                    return;
                }

                var s = freeDummies.GetViewBetween(due, int.MaxValue).Min;
                freeDummies.Remove(s);
                moved[b] = s;
            }

            current[record] = moved;
            cachedUntil[record] = moved.Max(i => view.Times[i]);
            ever[record].UnionWith(moved.Select(i => view.Names[i]));
        }

        void Done(int request, double t)
        {
            served[request] = t - view.Seconds(requests[request].At);
        }

        void Request(int r)
        {
            var request = requests[r];
            var t = view.Seconds(request.At);
            var wanted = configuration.ObliviousTransfer && request.Records.Count == 1
                ? workload.Records.Where(x => x.StudyId == request.StudyId).Select(x => x.Id).ToList()
                : request.Records;
            var cloud = wanted.Where(id => current.ContainsKey(id) && cachedUntil[id] < t).ToList();
            fromCloud[r] = cloud.Count > 0;
            // What the proxy serves itself, in groups: with local streams on, it still counts (the server's RecordReader does the same).
            var local = configuration.Mode == ReadMode.Epochs && configuration.LocalStreams
                ? wanted.Except(cloud).Sum(id => current.TryGetValue(id, out var b) ? (long)Math.Ceiling(b.Length / (double)configuration.GroupSize) : 0)
                : 0;
            if (cloud.Count == 0)
            {
                if (local > 0)
                {
                    var newest = view.FirstAfter(t);
                    if (newest > 0)
                    {
                        schedule!.WantLocal(local, groupOf[newest - 1], requests[r].At);
                    }
                }

                return;
            }

            switch (configuration.Mode)
            {
                case ReadMode.Direct:
                    Read(cloud.SelectMany(id => current[id]), t);
                    Done(r, t);
                    break;
                case ReadMode.GroupsImmediate:
                    Read(cloud.SelectMany(id => current[id]).Select(i => groupOf[i]).Distinct().SelectMany(g => WrittenMembers(g, t)), t);
                    Done(r, t);
                    foreach (var id in cloud)
                    {
                        Relocate(id, t);
                    }

                    break;
                default:
                    // One stream for the request (a study comes as one, as WADO-RS prefetches it).
                    // Groups another request is already reading count towards its class, as the
                    // server's GroupReader counts them, and a request wholly in flight starts a
                    // stream shaped as cover.
                    var stream = new List<long>();
                    var joined = 0L;
                    foreach (var id in cloud)
                    {
                        var groups = current[id].Select(i => groupOf[i]).Distinct().ToArray();
                        outstanding[(r, id)] = groups.Length;
                        pendingOfRequest[r]++;
                        foreach (var g in groups)
                        {
                            if (!waitingFor.TryGetValue(g, out var list))
                            {
                                waitingFor[g] = list = [];
                                stream.Add(g);
                            }
                            else if (!list.Any(w => w.Request == r))
                            {
                                joined++;
                            }

                            list.Add((r, id));
                        }
                    }

                    var last = groupOf[Math.Max(0, view.FirstAfter(t) - 1)];
                    if (stream.Count > 0)
                    {
                        var avoid = configuration.PaddingAvoidsStudy
                            ? studyRecords[request.StudyId].Where(id => !wanted.Contains(id) && current.ContainsKey(id)).SelectMany(id => current[id].Select(i => groupOf[i])).ToList()
                            : null;
                        schedule!.Want(stream, last, local + (configuration.LocalStreams ? joined : 0), avoid);
                    }
                    else if (configuration.LocalStreams && joined + local > 0)
                    {
                        schedule!.WantLocal(joined + local, last, requests[r].At);
                    }

                    break;
            }
        }

        void Epoch(DateTimeOffset at)
        {
            var t = view.Seconds(at);
            var written = view.FirstAfter(t);
            foreach (var read in schedule!.TakeEpoch(at, written > 0 ? groupOf[written - 1] : -1))
            {
                var g = read.Group;
                Read(WrittenMembers(g, t), t);
                if (!waitingFor.Remove(g, out var waiters))
                {
                    continue;
                }

                foreach (var key in waiters)
                {
                    if (--outstanding[key] == 0)
                    {
                        outstanding.Remove(key);
                        Relocate(key.Record, t);
                        if (--pendingOfRequest[key.Request] == 0)
                        {
                            Done(key.Request, t);
                        }
                    }
                }
            }
        }

        var end = view.Origin.AddSeconds(view.Times.Length == 0 ? 0 : view.Times[^1]);
        var next = 0;
        while (next < requests.Count || (schedule is not null && schedule.NextEpochAt <= end))
        {
            if (schedule is not null && schedule.NextEpochAt <= end && (next == requests.Count || schedule.NextEpochAt < requests[next].At))
            {
                Epoch(schedule.NextEpochAt);
                continue;
            }

            Request(next++);
        }

        var times = Enumerable.Range(0, requests.Count).Where(r => fromCloud[r] && served[r] > 0 || (fromCloud[r] && configuration.Mode != ReadMode.Epochs)).Select(r => served[r]).ToList();
        return (new RetrievalLog(
            log, configuration, requests, reads,
            ever.ToDictionary(p => p.Key, p => (IReadOnlySet<string>)p.Value),
            fromCloud,
            times.Count == 0 ? 0 : times.Average(),
            times.Count == 0 ? 0 : Estimators.Percentile(times, 99)), cover);
    }

    private static int Poisson(Random random, double mean)
    {
        var limit = Math.Exp(-mean);
        var product = random.NextDouble();
        var n = 0;
        while (product > limit)
        {
            n++;
            product *= random.NextDouble();
        }

        return n;
    }

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
