using System.Globalization;
using TrustedProxy.ObliviousRetrieval;
using TrustedProxy.UploadCache;

namespace TrustedProxy.LoadTests;

/// <summary>
/// What the epoch read schedule costs at the documented load, driven on virtual time through the
/// production engine (<see cref="ReadSchedule"/>, <see cref="CoverModel"/>) with the production
/// defaults: a consumer hospital asking for 200 studies of 500 MB a day (Poisson arrivals, half
/// among the last week's writes, half among the whole store), in a store of 10 million objects
/// (1.3 TB) written at the upload cache's 4 a second. Four weeks at that load (the model learns the
/// site), then eight weeks of nobody asking (the model forgets it, down to the idle floor). Prints
/// per week: bytes wanted, bytes read, their ratio, the idle read a day, and how long a study took
/// from request to its last block.
/// </summary>
internal static class ReadCostScenario
{
    public static int Run(string[] args)
    {
        var days = args.SkipWhile(a => a != "--days").Skip(1).FirstOrDefault() is { } d ? int.Parse(d, CultureInfo.InvariantCulture) : 28;
        var idleDays = args.SkipWhile(a => a != "--idle-days").Skip(1).FirstOrDefault() is { } i ? int.Parse(i, CultureInfo.InvariantCulture) : 56;
        var seed = args.SkipWhile(a => a != "--seed").Skip(1).FirstOrDefault() is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : 1;
        var options = new ObliviousRetrievalOptions();
        var uploads = new UploadCacheOptions();
        var groupBytes = (double)options.GroupSize * uploads.BlockSizeBytes;
        var studyGroups = (int)Math.Ceiling(options.DeclaredRetrievalMegabytes * 1e6 / groupBytes);
        var random = new Random(seed);
        var start = new DateTimeOffset(2026, 1, 5, 0, 0, 0, TimeSpan.Zero);
        var cover = new CoverModel(CoverModelSettings.From(options, uploads.BlockSizeBytes), start);
        var schedule = new ReadSchedule(options, cover, new Random(seed + 1), start);
        var writesPerSecond = uploads.SlotsPerSecond;
        long Last(DateTimeOffset at) => 10_000_000 + (long)((at - start).TotalSeconds * writesPerSecond);

        var meanGap = 86_400.0 / options.DeclaredRetrievalsPerDay;
        var nextRequest = start.AddSeconds(-Math.Log(1 - random.NextDouble()) * meanGap);
        var loadEnds = start.AddDays(days);
        var end = loadEnds.AddDays(idleDays);
        var pending = new Dictionary<long, (DateTimeOffset Asked, int Left)>();
        var week = new Week();
        var weeks = new List<(int Index, Week Figures)>();
        var weekStart = start;

        Console.WriteLine(F($"Documented load: {options.DeclaredRetrievalsPerDay:0} studies of {options.DeclaredRetrievalMegabytes:0} MB a day ({studyGroups} objects of {uploads.BlockSizeBytes / 1024} KiB each) for {days} days, then nobody for {idleDays} days. Defaults: an epoch every {options.EpochSeconds} s, {options.GroupsPerEpoch} objects per stream per epoch, up to {options.MaxStreams} streams, cover ×{options.CoverPerWanted}, idle floor {options.IdleFloorGigabytesPerDay} GB a day, model half-life {options.CoverModelHalfLifeDays} days, snapshot every {options.CoverModelSnapshotHours} h."));
        Console.WriteLine();
        Console.WriteLine("| week | load | wanted GB/day | read GB/day | read / wanted | cover streams/day | study: request to last block (p50 / p99) |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        while (schedule.NextEpochAt < end)
        {
            if (nextRequest < loadEnds && nextRequest <= schedule.NextEpochAt)
            {
                var last = Last(nextRequest);
                var recent = random.NextDouble() < 0.5;
                var newest = recent ? last - random.NextInt64(7 * 86_400 * (long)writesPerSecond) : random.NextInt64(studyGroups * 8L, last);

                // A study written at once: released over about eight times its size (the pool mixes it with others and with cover).
                var groups = new HashSet<long>();
                while (groups.Count < studyGroups)
                {
                    groups.Add(newest - (long)(Math.Pow(random.NextDouble(), 2) * studyGroups * 8));
                }

                var id = schedule.Want(groups.ToList(), last);
                pending[id] = (nextRequest, studyGroups);
                week.WantedGroups += studyGroups;
                nextRequest = nextRequest.AddSeconds(-Math.Log(1 - random.NextDouble()) * meanGap);
                continue;
            }

            var now = schedule.NextEpochAt;
            foreach (var read in schedule.TakeEpoch(now, Last(now)))
            {
                week.ReadGroups++;
                if (read.Stream < 0)
                {
                    week.CoverReads++;
                    if (week.SeenCover.Add(read.Stream))
                    {
                        week.CoverStreams++;
                    }
                }

                if (read.Wanted && pending.TryGetValue(read.Stream, out var p))
                {
                    if (--p.Left == 0)
                    {
                        pending.Remove(read.Stream);
                        week.ServiceSeconds.Add((now - p.Asked).TotalSeconds);
                    }
                    else
                    {
                        pending[read.Stream] = p;
                    }
                }
            }

            if (now - weekStart >= TimeSpan.FromDays(7))
            {
                weeks.Add((weeks.Count + 1, week));
                Print(weeks.Count, weekStart < loadEnds, week, groupBytes);
                week = new Week();
                weekStart = now;
            }
        }

        return 0;
    }

    private static void Print(int index, bool loaded, Week week, double groupBytes)
    {
        var wanted = week.WantedGroups * groupBytes / 1e9 / 7;
        var read = week.ReadGroups * groupBytes / 1e9 / 7;
        var service = week.ServiceSeconds.Order().ToList();
        var times = service.Count == 0 ? "–" : F($"{service[service.Count / 2]:0} s / {service[Math.Min(service.Count - 1, (int)(service.Count * 0.99))]:0} s");
        Console.WriteLine(F($"| {index} | {(loaded ? "documented" : "idle")} | {wanted:0.0} | {read:0.0} | {(wanted > 0 ? (read / wanted).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "–")} | {week.CoverStreams / 7.0:0.#} | {times} |"));
    }

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private sealed class Week
    {
        public long WantedGroups { get; set; }

        public long ReadGroups { get; set; }

        public long CoverReads { get; set; }

        public long CoverStreams { get; set; }

        public HashSet<long> SeenCover { get; } = [];

        public List<double> ServiceSeconds { get; } = [];
    }
}
