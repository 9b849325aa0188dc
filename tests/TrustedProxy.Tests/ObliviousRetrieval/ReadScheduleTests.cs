using TrustedProxy.ObliviousRetrieval;

namespace TrustedProxy.Tests.ObliviousRetrieval;

/// <summary>
/// The epoch read schedule on virtual time: every clock value is a <see cref="DateTimeOffset"/> the
/// test makes, every random source is seeded, so each run reads the same groups. The statistical
/// checks leave several standard deviations of room at their seed.
/// </summary>
public sealed class ReadScheduleTests
{
    private static readonly DateTimeOffset Start = new(2025, 3, 3, 9, 0, 0, TimeSpan.Zero);

    [Fact]
    public void TheFirstEpoch_IsDueWithinOnePeriodOfTheStart_AtARandomPhase()
    {
        var options = Options(epochSeconds: 2.5);

        var firsts = Enumerable.Range(0, 50).Select(seed => new ReadSchedule(options, NoCover(), new Random(seed), Start).NextEpochAt).ToList();

        Assert.All(firsts, first => Assert.InRange(first, Start, Start.AddSeconds(2.5).AddTicks(-1)));
        Assert.True(firsts.Distinct().Count() > 45, "the phase should vary with the random source");
    }

    [Fact]
    public void EpochsTickEveryPeriod_WhetherOrNotRequestsCome()
    {
        var options = Options(epochSeconds: 1.5);
        var quiet = new ReadSchedule(options, Model(0.2, Prior()), new Random(5), Start);
        var busy = new ReadSchedule(options, Model(0.2, Prior()), new Random(5), Start);
        var first = quiet.NextEpochAt;
        var requests = new Random(6);
        Assert.Equal(first, busy.NextEpochAt);

        for (var epoch = 1; epoch <= 300; epoch++)
        {
            if (epoch % 7 == 0)
            {
                busy.Want(Groups(requests, 1 + requests.Next(40), 0, 5_000), 5_000);
            }

            quiet.TakeEpoch(quiet.NextEpochAt, 5_000);
            busy.TakeEpoch(busy.NextEpochAt, 5_000);

            Assert.Equal(first + TimeSpan.FromSeconds(1.5) * epoch, quiet.NextEpochAt);
            Assert.Equal(quiet.NextEpochAt, busy.NextEpochAt);
        }
    }

    [Fact]
    public void ACallerBehindByMoreThanAnEpoch_ResumesOneEpochAfterNow_WithoutCatchingUp()
    {
        var schedule = new ReadSchedule(Options(), NoCover(), new Random(1), Start);
        schedule.Want([10, 11, 12], 100);
        var due = schedule.NextEpochAt;

        var late = due.AddSeconds(5.5);
        var reads = schedule.TakeEpoch(late, 100);

        Assert.Equal(late.AddSeconds(1), schedule.NextEpochAt);
        Assert.Equal(4, reads.Count);
        var next = schedule.NextEpochAt;
        schedule.TakeEpoch(next, 100);
        Assert.Equal(next.AddSeconds(1), schedule.NextEpochAt);
    }

    [Fact]
    public void ACallerBehindByLessThanAnEpoch_KeepsThePhase()
    {
        var schedule = new ReadSchedule(Options(), NoCover(), new Random(1), Start);
        var due = schedule.NextEpochAt;

        schedule.TakeEpoch(due.AddSeconds(0.6), 100);

        Assert.Equal(due.AddSeconds(1), schedule.NextEpochAt);
    }

    [Fact]
    public void ARequestStream_ReadsEveryWantedGroupOnce_InTheOrderAsked()
    {
        var random = new Random(11);
        var asked = Groups(random, 13, 0, 10_000).ToList();
        asked.Insert(5, asked[2]);
        asked.Add(asked[0]);
        var schedule = new ReadSchedule(Options(groupsPerEpoch: 1), NoCover(), new Random(12), Start);

        var id = schedule.Want(asked, 10_000);
        var stream = Streams(RunUntilIdle(schedule, 10_000))[id];

        Assert.Equal(asked.Distinct(), stream.Reads.Where(r => r.Wanted).Select(r => r.Group));
        Assert.Equal(16, stream.Reads.Count);
    }

    [Theory]
    [InlineData(1, 10_000, 8)]
    [InlineData(8, 10_000, 8)]
    [InlineData(9, 10_000, 16)]
    [InlineData(33, 10_000, 64)]
    [InlineData(100, 10_000, 128)]
    [InlineData(33, 40, 41)]
    [InlineData(5, 5, 6)]
    [InlineData(3, 2, 3)]
    [InlineData(1, 0, 1)]
    public void ARequestStream_IsPaddedToTheSmallestSizeClass_NoLargerThanTheGroupsWritten(int wanted, long lastGroup, int size)
    {
        var random = new Random(wanted);
        var groups = Groups(random, wanted, 0, lastGroup);
        var schedule = new ReadSchedule(Options(), NoCover(), new Random(2), Start);

        var id = schedule.Want(groups, lastGroup);
        var reads = Streams(RunUntilIdle(schedule, lastGroup))[id].Reads;

        Assert.Equal(size, reads.Count);
        Assert.Equal(wanted, reads.Count(r => r.Wanted));
    }

    [Theory]
    [InlineData(0L, 6L, 6, 1_000L)]
    [InlineData(996L, 1_000L, 5, 1_000L)]
    [InlineData(0L, 1_000L, 20, 1_000L)]
    [InlineData(20L, 60L, 30, 63L)]
    [InlineData(500L, 520L, 17, 100_000L)]
    [InlineData(0L, 40L, 30, 63L)]
    public void Padding_IsDistinct_WithinTheGroupsWritten_AndNeverAWantedGroup(long lo, long hi, int wanted, long lastGroup)
    {
        var random = new Random((int)(lo + hi + wanted));
        var groups = Groups(random, wanted, lo, Math.Min(hi, lastGroup));
        var schedule = new ReadSchedule(Options(), NoCover(), new Random(3), Start);

        var id = schedule.Want(groups, lastGroup);
        var reads = Streams(RunUntilIdle(schedule, lastGroup))[id].Reads;
        var padding = reads.Where(r => !r.Wanted).Select(r => r.Group).ToList();

        Assert.NotEmpty(padding);
        Assert.Equal(reads.Count, reads.Select(r => r.Group).Distinct().Count());
        Assert.All(padding, g => Assert.InRange(g, 0, lastGroup));
        Assert.Empty(padding.Intersect(groups));
    }

    [Fact]
    public void OnlyTheWantedGroupsOfRequestStreams_AreMarkedWanted()
    {
        var random = new Random(21);
        var schedule = new ReadSchedule(Options(maxStreams: 16), Model(0.5, Prior()), new Random(22), Start);
        var asked = new Dictionary<long, HashSet<long>>();

        var epochs = Run(schedule, 400, 20_000, epoch =>
        {
            if (epoch % 3 == 0 && epoch < 350)
            {
                var groups = Groups(random, 1 + random.Next(30), 0, 20_000);
                asked[schedule.Want(groups, 20_000)] = [.. groups];
            }
        });

        var reads = epochs.SelectMany(e => e).ToList();
        Assert.Contains(reads, r => !asked.ContainsKey(r.Stream));
        Assert.All(reads, r => Assert.Equal(asked.TryGetValue(r.Stream, out var groups) && groups.Contains(r.Group), r.Wanted));
        Assert.All(asked, request => Assert.Equal(request.Value.Count, reads.Count(r => r.Stream == request.Key && r.Wanted)));
    }

    [Fact]
    public void EachEpoch_ReadsAtMostGroupsPerEpochFromEachStream_AndAtMostMaxStreams()
    {
        var random = new Random(31);
        var options = Options(groupsPerEpoch: 5, maxStreams: 3);
        var schedule = new ReadSchedule(options, Model(0.3, Prior()), new Random(32), Start);
        var active = new List<int>();

        var epochs = Run(schedule, 600, 50_000, epoch =>
        {
            if (epoch % 2 == 0)
            {
                schedule.Want(Groups(random, 1 + random.Next(50), 0, 50_000), 50_000);
            }

            active.Add(schedule.Active);
        });

        Assert.True(schedule.Waiting > 0, "the check needs more streams than room for them");
        Assert.All(active, a => Assert.InRange(a, 0, options.MaxStreams));
        Assert.All(epochs, e => Assert.InRange(e.Select(r => r.Stream).Distinct().Count(), 0, options.MaxStreams));
        Assert.All(epochs, e => Assert.All(e.GroupBy(r => r.Stream), s => Assert.InRange(s.Count(), 1, options.GroupsPerEpoch)));
        Assert.Contains(epochs, e => e.Select(r => r.Stream).Distinct().Count() == options.MaxStreams);
    }

    [Fact]
    public void WaitingRequests_StartInTheOrderTheyCame_AsSoonAsAStreamEnds()
    {
        var random = new Random(41);
        var schedule = new ReadSchedule(Options(groupsPerEpoch: 4, maxStreams: 2), NoCover(), new Random(42), Start);
        var ids = new[] { 20, 3, 9, 1, 40, 2, 7 }.Select(n => schedule.Want(Groups(random, n, 0, 10_000), 10_000)).ToList();

        var streams = Streams(RunUntilIdle(schedule, 10_000));

        // Sizes 32, 8, 16, 8, 64, 8, 8 at 4 a epoch: 8, 2, 4, 2, 16, 2 and 2 epochs.
        var starts = ids.Select(id => streams[id].First).ToList();
        Assert.Equal([0, 0, 2, 6, 8, 8, 10], starts);
        Assert.All(starts.Skip(2), start => Assert.Contains(streams.Values, s => s.Last == start - 1));
    }

    [Fact]
    public void EveryStream_IsReadToItsEnd_GroupsPerEpochAtATime_InConsecutiveEpochs()
    {
        var random = new Random(51);
        var options = Options(groupsPerEpoch: 6, maxStreams: 4);
        var cover = new Dictionary<StreamShape, double> { [Shape(3_000, 2, 2)] = 1 };
        var schedule = new ReadSchedule(options, Model(0.1, cover), new Random(52), Start);
        var sizes = new Dictionary<long, int>();

        var epochs = Run(schedule, 800, 50_000, epoch =>
        {
            if (epoch % 9 == 0 && epoch < 600)
            {
                var wanted = 1 + random.Next(60);
                sizes[schedule.Want(Groups(random, wanted, 0, 50_000), 50_000)] = (int)StreamShape.SizeOf(StreamShape.SizeClassOf(wanted, 8), 8);
            }
        });
        var streams = Streams(epochs);

        var finished = streams.Where(s => s.Value.First < 780).ToList();
        Assert.Contains(finished, s => !sizes.ContainsKey(s.Key));
        Assert.Equal(sizes.Keys.Order(), finished.Where(s => sizes.ContainsKey(s.Key)).Select(s => s.Key).Order());
        Assert.All(finished, s =>
        {
            var size = sizes.TryGetValue(s.Key, out var asked) ? asked : 32;
            Assert.Equal(size, s.Value.Reads.Count);
            Assert.Equal((size + options.GroupsPerEpoch - 1) / options.GroupsPerEpoch, s.Value.Last - s.Value.First + 1);
            Assert.All(Enumerable.Range(s.Value.First, s.Value.Last - s.Value.First), e => Assert.Equal(options.GroupsPerEpoch, epochs[e].Count(r => r.Stream == s.Key)));
        });
    }

    [Fact]
    public void NothingIsRead_WhileNoGroupIsWritten()
    {
        var schedule = new ReadSchedule(Options(maxStreams: 16), Model(5, Prior()), new Random(61), Start);
        schedule.Want([0, 1, 2], 2);

        var before = Run(schedule, 200, -1);

        Assert.All(before, e => Assert.Empty(e));
        Assert.Equal((1, 0), (schedule.Waiting, schedule.Active));
        Assert.Contains(schedule.TakeEpoch(schedule.NextEpochAt, 2), r => r.Wanted);
    }

    [Fact]
    public void NoCoverIsRead_WhenTheModelsRateIsZero()
    {
        var model = NoCover();
        var schedule = new ReadSchedule(Options(), model, new Random(71), Start);

        var idle = Run(schedule, 5_000, 1_000);
        var id = schedule.Want([7, 8, 9], 1_000);
        var busy = Run(schedule, 500, 1_000);

        Assert.Equal(0, model.CoverStreamsPerSecond(Start.AddHours(2)));
        Assert.All(idle, e => Assert.Empty(e));
        Assert.All(busy.SelectMany(e => e), r => Assert.Equal(id, r.Stream));
    }

    [Theory]
    [InlineData(0.1, 1.0, 10_000)]
    [InlineData(0.02, 2.5, 20_000)]
    [InlineData(1.0, 1.0, 1_000)]
    [InlineData(0.5, 4.0, 500)]
    public void CoverStreams_StartAtTheModelsRate(double streamsPerSecond, double epochSeconds, int epochs)
    {
        var model = Settled(streamsPerSecond);
        var rate = model.CoverStreamsPerSecond(Start);
        var options = Options(groupsPerEpoch: 64, maxStreams: 1024, epochSeconds: epochSeconds);
        var schedule = new ReadSchedule(options, model, new Random(81), Start);

        var started = Streams(Run(schedule, epochs, 1_000_000)).Count;

        var expected = rate * epochSeconds * epochs;
        Assert.InRange(rate, streamsPerSecond * 0.999, streamsPerSecond * 1.001);
        Assert.True(expected >= 990, "too few expected for the tolerance");
        Assert.InRange(started, expected * 0.85, expected * 1.15);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(5L)]
    [InlineData(100L)]
    [InlineData(100_000L)]
    public void CoverGroups_AreWrittenGroups_DistinctWithinAStream_OfTheModelsSizes(long lastGroup)
    {
        var prior = new Dictionary<StreamShape, double>
        {
            [Shape(0, 0, 1)] = 1,
            [Shape(40, 3, 1)] = 1,
            [Shape(5_000, 2, 100)] = 1,
            [Shape(2_000_000, 4, 8)] = 1,
            [Shape(60, 5, 1.2)] = 1,
        };
        var sizes = new[] { 8L, 64, 32, 128, 256 }.Select(size => Math.Min(size, lastGroup + 1)).ToHashSet();
        var schedule = new ReadSchedule(Options(groupsPerEpoch: 300, maxStreams: 64), Model(0.5, prior), new Random(91), Start);

        var streams = Streams(Run(schedule, 1_000, lastGroup));

        Assert.True(streams.Count > 300);
        Assert.All(streams.Values, s => Assert.All(s.Reads, r => Assert.InRange(r.Group, 0, lastGroup)));
        Assert.All(streams.Values, s => Assert.Equal(s.Reads.Count, s.Reads.Select(r => r.Group).Distinct().Count()));
        Assert.All(streams.Values, s => Assert.Contains((long)s.Reads.Count, sizes));
    }

    [Fact]
    public void CoverStreamSizes_FollowTheModelsSizeClasses()
    {
        var prior = new Dictionary<StreamShape, double>
        {
            [Shape(1_000, 0, 2)] = 1,
            [Shape(30_000, 2, 2)] = 1,
            [Shape(500, 4, 2)] = 2,
        };
        var schedule = new ReadSchedule(Options(groupsPerEpoch: 128, maxStreams: 64), Model(0.4, prior), new Random(101), Start);

        var streams = Streams(Run(schedule, 4_000, 1_000_000));

        var bySize = streams.Values.Where(s => s.First < 3_990).GroupBy(s => s.Reads.Count).ToDictionary(g => (long)g.Key, g => (double)g.Count());
        var total = bySize.Values.Sum();
        Assert.True(total > 1_000);
        Assert.Equal([8L, 32, 128], bySize.Keys.Order());
        Assert.InRange(bySize[8] / total, 0.2, 0.3);
        Assert.InRange(bySize[32] / total, 0.2, 0.3);
        Assert.InRange(bySize[128] / total, 0.44, 0.56);
    }

    [Theory]
    [InlineData(3, 0, 8)]
    [InlineData(3, 6, 16)]
    [InlineData(3, 30, 64)]
    [InlineData(40, 100, 256)]
    public void APartlyLocalRequest_IsPaddedToTheClassOfAllItsGroups(int wanted, long local, int size)
    {
        var groups = Groups(new Random(wanted), wanted, 0, 10_000);
        var schedule = new ReadSchedule(Options(), NoCover(), new Random(5), Start);

        var id = schedule.Want(groups, 10_000, local);
        var reads = Streams(RunUntilIdle(schedule, 10_000))[id].Reads;

        Assert.Equal(size, reads.Count);
        Assert.Equal(wanted, reads.Count(r => r.Wanted));
    }

    [Theory]
    [InlineData(1L, 8)]
    [InlineData(8L, 8)]
    [InlineData(9L, 16)]
    [InlineData(500L, 512)]
    public void ARequestServedLocally_StartsAStreamOfItsClass_ShapedAsCover_WithNothingWanted(long local, int size)
    {
        // The model knows only streams of class 0 (8 groups) and 6 (512): a local request's class is its own all the same.
        var prior = new Dictionary<StreamShape, double> { [Shape(1_000, 0, 2)] = 1, [Shape(50_000, 6, 3)] = 1 };
        var schedule = new ReadSchedule(Options(), Model(1e-9, prior), new Random(7), Start);

        var id = schedule.WantLocal(local, 1_000_000, Start);
        var epochs = RunUntilIdle(schedule, 1_000_000);
        var stream = Streams(epochs)[id];

        Assert.Equal(size, stream.Reads.Count);
        Assert.DoesNotContain(stream.Reads, r => r.Wanted);
        Assert.Equal(stream.Reads.Count, stream.Reads.Select(r => r.Group).Distinct().Count());
        Assert.Equal(0, stream.First);
    }

    [Theory]
    [InlineData(1, 256)]
    [InlineData(5, 256)]
    [InlineData(130, 256)]
    [InlineData(256, 256)]
    [InlineData(300, 512)]
    public void UnderAFloor_EveryRequest_ReadsTheFloor_TheRestDrawnFromTheModel(int wanted, int size)
    {
        // The model knows streams of 8 groups written long ago (far from the request): the tail is drawn there.
        var prior = new Dictionary<StreamShape, double> { [Shape(400_000, 0, 2)] = 1, [Shape(400_000, 5, 2)] = 1 };
        var groups = Groups(new Random(wanted), wanted, 990_000, 1_000_000);
        var schedule = new ReadSchedule(Options(groupsPerEpoch: 64), Model(1e-9, prior, floorGroups: 256), new Random(3), Start);

        var id = schedule.Want(groups, 1_000_000);
        var reads = Streams(RunUntilIdle(schedule, 1_000_000))[id].Reads;

        Assert.Equal(size, reads.Count);
        Assert.Equal(size, reads.Select(r => r.Group).Distinct().Count());
        Assert.Equal(groups.Order(), reads.Where(r => r.Wanted).Select(r => r.Group).Order());

        // The request's own class lies around its groups; the tail where the model's streams are.
        var core = (int)StreamShape.SizeOf(StreamShape.SizeClassOf(wanted, 8), 8);
        Assert.Equal(core, reads.Count(r => r.Group >= 900_000));
        Assert.All(reads.Where(r => r.Group < 900_000), r => Assert.InRange(r.Group, 0, 700_000));
    }

    [Fact]
    public void UnderAFloor_AWantedGroup_TakesARandomPlaceInTheStream_NotTheFirstEpochs()
    {
        // Were wanted groups read first, the first epochs of a stream would hold them all, and a
        // read's place in its stream would tell wanted from cover.
        var prior = new Dictionary<StreamShape, double> { [Shape(400_000, 5, 2)] = 1 };
        var epochOfWanted = new int[4];
        for (var seed = 0; seed < 400; seed++)
        {
            var schedule = new ReadSchedule(Options(groupsPerEpoch: 64), Model(1e-9, prior, floorGroups: 256), new Random(seed), Start);
            schedule.Want([999_000 + seed], 1_000_000);
            var epochs = RunUntilIdle(schedule, 1_000_000);
            Assert.Equal(4, epochs.Count);
            epochOfWanted[epochs.FindIndex(e => e.Any(r => r.Wanted))]++;
        }

        Assert.All(epochOfWanted, n => Assert.InRange(n, 70, 130));
    }

    [Fact]
    public void UnderAFloor_ARequestsWantedGroups_KeepTheirOrder()
    {
        var groups = Groups(new Random(4), 20, 990_000, 1_000_000);
        var schedule = new ReadSchedule(Options(groupsPerEpoch: 1), Model(1e-9, Prior(), floorGroups: 256), new Random(8), Start);

        var id = schedule.Want(groups, 1_000_000);

        Assert.Equal(groups, Streams(RunUntilIdle(schedule, 1_000_000))[id].Reads.Where(r => r.Wanted).Select(r => r.Group));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(3L)]
    public void UnderAFloor_CoverAndLocalStreams_ReadTheFloorToo(long local)
    {
        var prior = new Dictionary<StreamShape, double> { [Shape(1_000, 0, 2)] = 1 };
        var model = Model(local == 0 ? 0.5 : 1e-9, prior, floorGroups: 128);
        var schedule = new ReadSchedule(Options(groupsPerEpoch: 16), model, new Random(11), Start);

        var id = local > 0 ? schedule.WantLocal(local, 100_000, Start) : 0;
        var streams = Streams(Run(schedule, 400, 100_000));

        var finished = streams.Where(s => s.Value.Last < 380).ToList();
        Assert.NotEmpty(finished);
        Assert.All(finished, s => Assert.Equal(128, s.Value.Reads.Select(r => r.Group).Distinct().Count()));
        Assert.All(finished, s => Assert.DoesNotContain(s.Value.Reads, r => r.Wanted));
        Assert.True(local == 0 || streams.ContainsKey(id));
        Assert.Equal(128.0, model.MeanStreamGroups, 9);
    }

    [Fact]
    public void WithoutPadding_TheControlLeavesRequestsBelowTheFloor()
    {
        var schedule = new ReadSchedule(Options(groupsPerEpoch: 64), Model(1e-9, Prior(), floorGroups: 256), new Random(3), Start, ReadScheduleControl.NoPadding);

        var id = schedule.Want([10, 20, 30], 1_000_000);

        Assert.Equal(3, Streams(RunUntilIdle(schedule, 1_000_000))[id].Reads.Count);
    }

    [Fact]
    public void ARequestServedLocally_WaitsInTheQueueAsARequestWould()
    {
        var schedule = new ReadSchedule(Options(maxStreams: 1), NoCover(), new Random(9), Start);

        var first = schedule.Want([5, 6, 7], 1_000);
        var local = schedule.WantLocal(3, 1_000, Start);
        var streams = Streams(RunUntilIdle(schedule, 1_000));

        Assert.Equal(0, streams[first].First);
        Assert.Equal(streams[first].Last + 1, streams[local].First);
    }

    [Fact]
    public void Cover_DoesNotFollowTodaysRequests_ToTheirGroups()
    {
        var (quiet, busy, streams) = CoverShareInsideRequestedRange(ReadScheduleControl.None);

        Assert.True(streams > 1_000, "too few cover streams for the tolerance");
        Assert.InRange(busy, quiet - 0.01, quiet + 0.01);
    }

    [Fact]
    public void TheReplayControl_FailsThatCheck()
    {
        var (quiet, busy, _) = CoverShareInsideRequestedRange(ReadScheduleControl.ReplayRecentWanted);

        Assert.True(busy > quiet + 0.5, $"cover share in the requested range: {busy:F3} with requests, {quiet:F3} without");
    }

    /// <summary>
    /// The share of cover reads that fall in one narrow range of groups, without requests and with
    /// a request for groups of that range every epoch. The model's snapshot outlasts the run, so the
    /// requests are learned but never reach the cover of the run.
    /// </summary>
    private static (double Quiet, double Busy, int CoverStreams) CoverShareInsideRequestedRange(ReadScheduleControl control)
    {
        const long lastGroup = 1_000_000;
        const long lo = lastGroup - 5_200;
        const long hi = lastGroup - 5_000;
        var prior = Enumerable.Range(StreamShape.AgeBinOf(1_000), StreamShape.AgeBinOf(64_000) - StreamShape.AgeBinOf(1_000) + 1)
            .ToDictionary(bin => new StreamShape(bin, 1, StreamShape.SpreadBinOf(4)), _ => 1.0);
        var options = Options(groupsPerEpoch: 16, maxStreams: 64);

        (double Share, int Streams) Measure(bool requests)
        {
            var random = new Random(111);
            var schedule = new ReadSchedule(options, Model(0.3, prior), new Random(112), Start, control);
            var ids = new HashSet<long>();
            var epochs = Run(schedule, 6_000, lastGroup, _ =>
            {
                if (requests)
                {
                    ids.Add(schedule.Want(Groups(random, 16, lo, hi), lastGroup));
                }
            });
            var cover = epochs.SelectMany(e => e).Where(r => !ids.Contains(r.Stream)).ToList();
            return (cover.Count(r => r.Group >= lo && r.Group <= hi) / (double)cover.Count, cover.Select(r => r.Stream).Distinct().Count());
        }

        var (quiet, streams) = Measure(requests: false);
        var (busy, _) = Measure(requests: true);
        return (quiet, busy, streams);
    }

    private static ObliviousRetrievalOptions Options(int groupsPerEpoch = 4, int maxStreams = 4, double epochSeconds = 1) =>
        new() { EpochSeconds = epochSeconds, GroupsPerEpoch = groupsPerEpoch, MaxStreams = maxStreams, MinStreamGroups = 8 };

    /// <summary>A model whose rate is zero: no declared load, no idle floor.</summary>
    private static CoverModel NoCover() => Model(0, new Dictionary<StreamShape, double>());

    /// <summary>A model at this rate and shape whose snapshot outlasts every test, so that what the schedule teaches it never reaches cover here.</summary>
    private static CoverModel Model(double streamsPerSecond, IReadOnlyDictionary<StreamShape, double> prior, long floorGroups = 0) =>
        new(Settings(streamsPerSecond, prior) with { StreamFloorGroups = floorGroups }, Start);

    private static CoverModelSettings Settings(double streamsPerSecond, IReadOnlyDictionary<StreamShape, double> prior) =>
        new(TimeSpan.FromDays(7), TimeSpan.FromDays(365), CoverPerWanted: 1, FloorGroupsPerSecond: 0, MinStreamGroups: 8, prior, streamsPerSecond);

    /// <summary>
    /// A model without a prior that learned wanted streams of many shapes, as many as a load of this
    /// rate leaves in its counts (the rate times the decay's mean life), settled as the privacy harness
    /// settles one.
    /// </summary>
    private static CoverModel Settled(double streamsPerSecond)
    {
        var settings = Settings(0, new Dictionary<StreamShape, double>()) with { HalfLife = TimeSpan.FromDays(1) };
        var learning = new CoverModel(settings, Start);
        var random = new Random(7);
        var count = Math.Round(streamsPerSecond * settings.HalfLife.TotalSeconds / Math.Log(2));
        for (var i = 0; i < count; i++)
        {
            learning.Observe(Shape(1L << (3 * random.Next(7)), random.Next(3), 1 + random.Next(2)), [random.NextDouble()], Start);
        }

        return new CoverModel(settings, Start, learning.State().Settled(Start));
    }

    /// <summary>The declared load's shape as <see cref="CoverModelSettings.From"/> makes it, in the smallest size class.</summary>
    private static Dictionary<StreamShape, double> Prior() =>
        Enumerable.Range(0, StreamShape.AgeBinOf(1 << 20) + 1).ToDictionary(bin => new StreamShape(bin, 0, StreamShape.SpreadBinOf(8)), _ => 1.0);

    private static StreamShape Shape(long age, int sizeClass, double spread) => new(StreamShape.AgeBinOf(age), sizeClass, StreamShape.SpreadBinOf(spread));

    /// <summary><paramref name="count"/> distinct groups of [lo, hi] in random order.</summary>
    private static long[] Groups(Random random, int count, long lo, long hi)
    {
        Assert.InRange(count, 1, hi - lo + 1);
        var chosen = new List<long>();
        while (chosen.Count < count)
        {
            var group = lo + random.NextInt64(hi - lo + 1);
            if (!chosen.Contains(group))
            {
                chosen.Add(group);
            }
        }

        return [.. chosen];
    }

    /// <summary>Takes <paramref name="epochs"/> epochs, each when it is due; <paramref name="beforeEpoch"/> runs before each.</summary>
    private static List<IReadOnlyList<EpochRead>> Run(ReadSchedule schedule, int epochs, long lastGroup, Action<int>? beforeEpoch = null)
    {
        var taken = new List<IReadOnlyList<EpochRead>>(epochs);
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            beforeEpoch?.Invoke(epoch);
            taken.Add(schedule.TakeEpoch(schedule.NextEpochAt, lastGroup));
        }

        return taken;
    }

    /// <summary>Takes epochs until no stream is active or waiting (a model without cover).</summary>
    private static List<IReadOnlyList<EpochRead>> RunUntilIdle(ReadSchedule schedule, long lastGroup)
    {
        var taken = new List<IReadOnlyList<EpochRead>>();
        while (schedule.Waiting + schedule.Active > 0)
        {
            Assert.True(taken.Count < 10_000, "the schedule should fall idle");
            taken.Add(schedule.TakeEpoch(schedule.NextEpochAt, lastGroup));
        }

        return taken;
    }

    /// <summary>Each stream's reads in the order taken, and the first and last epoch it read in.</summary>
    private static Dictionary<long, StreamTrace> Streams(List<IReadOnlyList<EpochRead>> epochs)
    {
        var streams = new Dictionary<long, StreamTrace>();
        for (var epoch = 0; epoch < epochs.Count; epoch++)
        {
            foreach (var read in epochs[epoch])
            {
                if (!streams.TryGetValue(read.Stream, out var stream))
                {
                    streams[read.Stream] = stream = new StreamTrace { First = epoch };
                }

                stream.Last = epoch;
                stream.Reads.Add(read);
            }
        }

        return streams;
    }

    private sealed class StreamTrace
    {
        public int First { get; init; }

        public int Last { get; set; }

        public List<EpochRead> Reads { get; } = [];
    }
}
