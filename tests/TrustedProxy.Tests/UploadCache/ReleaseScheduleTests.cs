using TrustedProxy.UploadCache;

namespace TrustedProxy.Tests.UploadCache;

public sealed class ReleaseScheduleTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void ConstantRate_WritesAtItsRate_WhateverArrives()
    {
        var schedule = new ConstantRateSchedule(2, 100, TimeSpan.FromHours(1), new Random(1), Start);
        var writes = RunTimed(schedule, Enumerable.Range(0, 500).Select(i => Start.AddSeconds(1800 + i * 0.01)));
        int In(double from, double to) => writes.Count(w => w.At >= Start.AddSeconds(from) && w.At < Start.AddSeconds(to));

        // 500 blocks arrive at 30 min: the writes in the half hour after look like the half hour before (2/s, Poisson).
        Assert.InRange(In(0, 1800), 3600 - 240, 3600 + 240);
        Assert.InRange(In(1800, 3600), 3600 - 240, 3600 + 240);
        Assert.InRange(In(1800, 1810), 20 - 18, 20 + 18);
    }

    [Fact]
    public void ConstantRate_ReleasesEveryBlock_InAnOrderUnrelatedToArrival()
    {
        var schedule = new ConstantRateSchedule(5, 50, TimeSpan.FromHours(1), new Random(2), Start);
        var releases = Run(schedule, Enumerable.Range(0, 400).Select(i => Start.AddSeconds(i * 0.05)));
        var order = releases.Where(r => r.Block is not null).Select(r => r.Block!.Value.Id).ToList();

        Assert.Equal(400, order.Count);
        Assert.Equal(Enumerable.Range(0, 400).Select(i => (long)i), order.Order());
        Assert.InRange(SpearmanRank(order), -0.2, 0.35);
        Assert.Equal(0, schedule.Count);
    }

    [Fact]
    public void ConstantRate_BelowThePoolThreshold_MixesWithDummies()
    {
        var releases = Run(new ConstantRateSchedule(10, 1000, TimeSpan.FromHours(10), new Random(3), Start), Enumerable.Range(0, 100).Select(i => Start.AddSeconds(i)));

        Assert.True(releases.Count(r => r.IsDummy) > releases.Count(r => !r.IsDummy));
    }

    [Fact]
    public void ConstantRate_ABlockPastMaxHold_TakesTheNextSlot()
    {
        var schedule = new ConstantRateSchedule(1, 1_000_000, TimeSpan.FromSeconds(30), new Random(4), Start);
        schedule.Admit(1, Start);

        var releases = Run(schedule, [], TimeSpan.FromSeconds(60));
        var released = releases.Single(r => !r.IsDummy);

        Assert.Equal(1, released.Block!.Value.Id);
    }

    [Fact]
    public void ExponentialHold_HoldsForTheConfiguredMean_WithinItsBounds()
    {
        var schedule = new ExponentialHoldSchedule(TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(300), 0, 0, new Random(5), Start);
        var holds = Enumerable.Range(0, 20_000).Select(_ => (schedule.DrawDeadline(Start) - Start).TotalSeconds).ToList();

        Assert.All(holds, h => Assert.InRange(h, 5, 300));
        Assert.InRange(holds.Average(), 55, 62);
    }

    [Fact]
    public void ExponentialHold_ReleasesDueBlocks_AndNotBefore()
    {
        var schedule = new ExponentialHoldSchedule(TimeSpan.FromSeconds(10), TimeSpan.Zero, TimeSpan.FromSeconds(100), 0, 0, new Random(6), Start);
        var log = new List<(DateTimeOffset At, PendingBlock Block)>();
        for (var i = 0; i < 200; i++)
        {
            schedule.Admit(i, Start);
        }

        for (var now = Start; now < Start.AddSeconds(200); now = now.AddSeconds(0.5))
        {
            log.AddRange(schedule.Take(now).Where(r => !r.IsDummy).Select(r => (now, r.Block!.Value)));
        }

        Assert.Equal(200, log.Count);
        Assert.All(log, e => Assert.True(e.At >= e.Block.DueAt && e.At - e.Block.DueAt < TimeSpan.FromSeconds(0.5)));
    }

    [Fact]
    public void ExponentialHold_WithAPoolThreshold_WaitsForKBlocks_UntilMaxHold()
    {
        var schedule = new ExponentialHoldSchedule(TimeSpan.FromSeconds(1), TimeSpan.Zero, TimeSpan.FromSeconds(60), 10, 0, new Random(7), Start);
        for (var i = 0; i < 5; i++)
        {
            schedule.Admit(i, Start);
        }

        Assert.Empty(schedule.Take(Start.AddSeconds(30)));
        Assert.Equal(Start.AddSeconds(60), schedule.NextEventAt(Start.AddSeconds(30)));
        Assert.Equal(5, schedule.Take(Start.AddSeconds(60)).Count);
    }

    [Fact]
    public void ExponentialHold_CoverTraffic_IsPoissonAtItsRate()
    {
        var releases = Run(new ExponentialHoldSchedule(TimeSpan.FromSeconds(1), TimeSpan.Zero, TimeSpan.FromSeconds(10), 0, 0.5, new Random(8), Start), []);

        Assert.InRange(releases.Count(r => r.IsDummy), 3600 * 0.5 * 0.93, 3600 * 0.5 * 1.07);
    }

    [Fact]
    public void ARemovedBlock_IsNeverReleased()
    {
        var schedule = new ConstantRateSchedule(10, 1, TimeSpan.FromHours(1), new Random(9), Start);
        schedule.Admit(1, Start);
        schedule.Admit(2, Start);
        Assert.True(schedule.Remove(1));

        var released = Run(schedule, [], TimeSpan.FromSeconds(60)).Where(r => !r.IsDummy).Select(r => r.Block!.Value.Id).ToList();

        Assert.Equal([2L], released);
    }

    private static List<Release> Run(IReleaseSchedule schedule, IEnumerable<DateTimeOffset> arrivals, TimeSpan? duration = null) =>
        RunTimed(schedule, arrivals, duration).Select(w => w.Release).ToList();

    private static List<(DateTimeOffset At, Release Release)> RunTimed(IReleaseSchedule schedule, IEnumerable<DateTimeOffset> arrivals, TimeSpan? duration = null)
    {
        var end = Start + (duration ?? TimeSpan.FromHours(1));
        var pending = new Queue<DateTimeOffset>(arrivals.Order());
        var releases = new List<(DateTimeOffset, Release)>();
        var now = Start;
        var nextId = 0L;
        while (now < end)
        {
            var next = schedule.NextEventAt(now);
            if (pending.TryPeek(out var arrival) && arrival <= next)
            {
                now = arrival;
                schedule.Admit(nextId++, pending.Dequeue());
                continue;
            }

            if (next >= end)
            {
                break;
            }

            now = next > now ? next : now;
            releases.AddRange(schedule.Take(now).Select(r => (now, r)));
        }

        return releases;
    }

    private static double SpearmanRank(IReadOnlyList<long> releasedIds)
    {
        var n = releasedIds.Count;
        double sum = 0;
        for (var position = 0; position < n; position++)
        {
            var d = position - releasedIds[position];
            sum += d * d;
        }

        return 1 - (6 * sum / (n * ((double)n * n - 1)));
    }
}
