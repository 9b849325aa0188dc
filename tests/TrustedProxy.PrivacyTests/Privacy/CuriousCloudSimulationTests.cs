using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.PrivacyTests.Privacy;

public sealed class CuriousCloudSimulationTests
{
    private static readonly HospitalWorkload SixHours = HospitalWorkload.Generate(new WorkloadOptions { Duration = TimeSpan.FromHours(6), Seed = 9 });

    private static long Blocks(IPaddingScheme padding) => SixHours.Records.Sum(r => padding.Layout(r.CiphertextLength).Count);

    [Fact]
    public async Task WriteThrough_WritesEveryBlockAtItsArrival_InArrivalOrder()
    {
        var log = await CuriousCloudSimulation.RunAsync(SixHours, SimulatedRuns.CacheOffFixedBlocks, seed: 1);

        Assert.Equal(Blocks(new FixedBlockPadding(128 * 1024)), log.Observations.Count);
        Assert.All(log.Observations, o => Assert.Equal("put", o.Operation));
        var truths = log.Observations.Select(o => log.Objects[o.Name]).ToList();
        Assert.All(truths, t => Assert.Equal(t.ArrivedAt, t.WrittenAt));
        Assert.Equal(truths.OrderBy(t => t.RecordId).ThenBy(t => t.Block), truths);
    }

    [Fact]
    public async Task ConstantRate_WritesEveryBlockOnce_AtItsRate_WithDummiesOfTheBlockSize()
    {
        var options = new UploadCacheOptions { SlotsPerSecond = 4, PoolThreshold = 1200 };
        var log = await CuriousCloudSimulation.RunAsync(SixHours, options, seed: 1);

        var names = log.Observations.Select(o => o.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.Equal(Blocks(new FixedBlockPadding(options.BlockSizeBytes)), log.Objects.Count);
        Assert.All(log.Observations, o => Assert.Equal(options.BlockSizeBytes, o.Length));
        Assert.Contains(log.Observations, o => !log.Objects.ContainsKey(o.Name));

        // A Poisson process of rate 4/s: the count over the run is within 2% of 4 × its span.
        var span = (log.Observations[^1].At - log.Observations[0].At).TotalSeconds;
        Assert.InRange(log.Observations.Count / span, 4 * 0.98, 4 * 1.02);
    }

    [Fact]
    public async Task ConstantRate_BlocksWaitKOverMuOnAverage()
    {
        var options = new UploadCacheOptions { SlotsPerSecond = 4, PoolThreshold = 1200 };
        var log = await CuriousCloudSimulation.RunAsync(SixHours, options, seed: 2);

        var delays = log.Objects.Values.Select(o => (o.WrittenAt - o.ArrivedAt).TotalSeconds).ToList();
        Assert.InRange(delays.Average(), 300 * 0.93, 300 * 1.07);
        Assert.All(delays, d => Assert.True(d >= 0));
    }

    [Fact]
    public async Task TheSameSeeds_GiveTheSameLog_ButFreshRandomNames()
    {
        var options = new UploadCacheOptions { SlotsPerSecond = 2, PoolThreshold = 600 };
        var first = await CuriousCloudSimulation.RunAsync(SixHours, options, seed: 4);
        var second = await CuriousCloudSimulation.RunAsync(SixHours, options, seed: 4);

        Assert.Equal(first.Observations.Select(o => (o.At, o.Length)), second.Observations.Select(o => (o.At, o.Length)));
        Assert.Equal(first.Observations.Select(o => first.Objects.GetValueOrDefault(o.Name)?.RecordId), second.Observations.Select(o => second.Objects.GetValueOrDefault(o.Name)?.RecordId));
        Assert.Empty(first.Observations.Select(o => o.Name).Intersect(second.Observations.Select(o => o.Name)));
    }

    [Fact]
    public async Task ACsvLogAsTheServerWritesIt_GivesTheAttackerTheSameView()
    {
        var log = await CuriousCloudSimulation.RunAsync(SixHours, new UploadCacheOptions { SlotsPerSecond = 1, PoolThreshold = 600 }, seed: 3);
        using var directory = new TemporaryDirectory();
        using (var csv = new CsvObservationSink(directory.File("observations.csv")))
        {
            foreach (var observation in log.Observations)
            {
                csv.Record(observation);
            }
        }

        var fromMemory = CloudLogView.FromObservations(log.Observations);
        var fromCsv = CloudLogView.FromObservations(CsvObservationSink.Read(directory.File("observations.csv")));

        Assert.Equal(fromMemory.Origin, fromCsv.Origin);
        Assert.Equal(fromMemory.Times, fromCsv.Times);
        Assert.Equal(fromMemory.Lengths, fromCsv.Lengths);
        Assert.Equal(fromMemory.Names, fromCsv.Names);
    }

    [Fact]
    public void VirtualTime_MovesOnlyForward_AndOnlyWhenTold()
    {
        var clock = new VirtualTimeProvider(HospitalWorkload.Epoch);

        Assert.Equal(HospitalWorkload.Epoch, clock.GetUtcNow());
        clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(HospitalWorkload.Epoch.AddSeconds(3), clock.GetUtcNow());
        Assert.Throws<InvalidOperationException>(() => clock.MoveTo(HospitalWorkload.Epoch));
    }
}
