using System.Text.Json;
using TrustedProxy.ObliviousRetrieval;

namespace TrustedProxy.Tests.ObliviousRetrieval;

/// <summary>The cover model and the stream shapes it counts, on virtual time and seeded random sources.</summary>
public sealed class CoverModelTests
{
    private static readonly DateTimeOffset Start = new(2025, 3, 3, 9, 0, 0, TimeSpan.Zero);
    private static readonly StreamShape Old = new(60, 0, 8);
    private static readonly StreamShape Recent = new(20, 1, 12);
    private static readonly StreamShape Large = new(40, 3, 4);

    [Fact]
    public void BeforeLearning_TheRateIsTheDeclaredLoadTimesCoverPerWanted_AndDrawsFollowThePrior()
    {
        var prior = new Dictionary<StreamShape, double> { [Old] = 1, [Recent] = 3, [Large] = 0.5 };
        var model = new CoverModel(Settings(prior, streamsPerSecond: 200 / 86_400.0, coverPerWanted: 2.5), Start);

        AssertClose(200 / 86_400.0 * 2.5, model.CoverStreamsPerSecond(Start));
        AssertClose(200 / 86_400.0 * 2.5, model.CoverStreamsPerSecond(Start.AddHours(23)));
        var random = new Random(1);
        var draws = Enumerable.Range(0, 9_000).Select(_ => model.Draw(random, Start)).ToList();
        Assert.InRange(draws.Count(d => d == Old) / 9_000.0, 0.2, 0.244);
        Assert.InRange(draws.Count(d => d == Recent) / 9_000.0, 0.64, 0.69);
        Assert.InRange(draws.Count(d => d == Large) / 9_000.0, 0.09, 0.13);
    }

    [Fact]
    public void WithATinyDeclaredLoad_TheRateIsTheIdleFloorOverTheMeanStreamSize()
    {
        var prior = new Dictionary<StreamShape, double> { [Recent] = 1, [Large] = 3 };
        var model = new CoverModel(Settings(prior, streamsPerSecond: 1e-9, floorGroupsPerSecond: 2.6), Start);
        var none = new CoverModel(Settings(new Dictionary<StreamShape, double>(), streamsPerSecond: 0, floorGroupsPerSecond: 2.6), Start);

        Assert.Equal((16 * 1 + 64 * 3) / 4.0, model.MeanStreamGroups, 9);
        AssertClose(2.6 / 52, model.CoverStreamsPerSecond(Start));
        AssertClose(2.6 / 8, none.CoverStreamsPerSecond(Start));
    }

    [Fact]
    public void FromOptions_TheDeclaredLoadIsThePrior_AndTheIdleFloorHoldsBelowIt()
    {
        const int blockSize = 131_072;
        var declared = new CoverModel(CoverModelSettings.From(new ObliviousRetrievalOptions(), blockSize), Start);
        var tiny = new CoverModel(CoverModelSettings.From(new ObliviousRetrievalOptions { DeclaredRetrievalsPerDay = 0.001 }, blockSize), Start);

        // 500 MB in blocks of 128 KiB is 3815 groups: the class of 8 × 2^9.
        AssertClose(200 / 86_400.0, declared.CoverStreamsPerSecond(Start));
        Assert.Equal(4_096, declared.MeanStreamGroups, 9);
        var random = new Random(2);
        Assert.All(Enumerable.Range(0, 500).Select(_ => declared.Draw(random, Start)), shape => Assert.Equal((9, StreamShape.SpreadBinOf(8)), (shape.SizeClass, shape.SpreadBin)));
        AssertClose(5e9 / blockSize / 86_400 / 4_096, tiny.CoverStreamsPerSecond(Start));
    }

    [Fact]
    public void Observing_ChangesNeitherDrawsNorRate_UntilTheSnapshotPeriodPasses()
    {
        var settings = Settings(new Dictionary<StreamShape, double> { [Old] = 1 }, streamsPerSecond: 1e-3);
        var model = new CoverModel(settings, Start);
        var untaught = new CoverModel(settings, Start);
        var before = model.CoverStreamsPerSecond(Start);
        var priorWeight = 1e-3 * MeanLifeSeconds(settings);
        for (var i = 0; i < 873; i++)
        {
            model.Observe(Recent, [0.9, 0.95], Start);
        }

        var justBefore = Start + settings.SnapshotPeriod - TimeSpan.FromTicks(1);
        Assert.Equal(before, model.CoverStreamsPerSecond(justBefore));
        Assert.Equal(Draws(untaught, 7, justBefore, 500), Draws(model, 7, justBefore, 500));
        Assert.Equal(untaught.Profile(Recent.SizeClass), model.Profile(Recent.SizeClass));

        var after = Start + settings.SnapshotPeriod;
        AssertClose((priorWeight + 873) * Math.Pow(0.5, settings.SnapshotPeriod / settings.HalfLife) / MeanLifeSeconds(settings), model.CoverStreamsPerSecond(after));
        var draws = Draws(model, 7, after, 4_000);
        Assert.True(draws.ToHashSet().SetEquals([Old, Recent]));
        Assert.InRange(draws.Count(d => d == Recent) / 4_000.0, 0.46, 0.54);
        var profile = model.Profile(Recent.SizeClass);
        Assert.Equal(profile.Sum(), profile[14] + profile[15], 9);
        Assert.True(profile[14] > 0 && profile[15] > 0);
        Assert.Equal(Enumerable.Repeat(1.0, CoverModel.ProfileBins), model.Profile(Old.SizeClass));
    }

    [Fact]
    public void LearnedCounts_HalveEveryHalfLife()
    {
        var settings = Settings(new Dictionary<StreamShape, double>(), streamsPerSecond: 0, coverPerWanted: 1.5) with
        {
            HalfLife = TimeSpan.FromDays(2),
            SnapshotPeriod = TimeSpan.FromHours(1),
        };
        var model = new CoverModel(settings, Start);
        for (var i = 0; i < 100; i++)
        {
            model.Observe(i % 2 == 0 ? Old : Recent, [0.5], Start);
        }

        var first = model.CoverStreamsPerSecond(Start.AddHours(1));
        var second = model.CoverStreamsPerSecond(Start.AddDays(2).AddHours(1));
        var third = model.CoverStreamsPerSecond(Start.AddDays(4).AddHours(1));

        AssertClose(100 * Math.Pow(0.5, 1 / 48.0) / MeanLifeSeconds(settings) * 1.5, first);
        AssertClose(0.5, second / first);
        AssertClose(0.25, third / first);
    }

    [Fact]
    public void AStateSavedAsJson_RestoresAModelThatDrawsAndRatesTheSame()
    {
        var prior = new Dictionary<StreamShape, double> { [Old] = 1, [Recent] = 2 };
        var settings = Settings(prior, streamsPerSecond: 0.01, coverPerWanted: 1.3, floorGroupsPerSecond: 0.5) with
        {
            HalfLife = TimeSpan.FromDays(3),
            SnapshotPeriod = TimeSpan.FromHours(6),
        };
        var model = new CoverModel(settings, Start);
        var random = new Random(3);
        var at = Start;
        for (; at < Start.AddDays(2); at = at.AddMinutes(7))
        {
            Teach(model, random, at);
            model.CoverStreamsPerSecond(at);
        }

        // Some learned after the last snapshot, so that the saved counts and the snapshot differ.
        for (var i = 0; i < 20; i++)
        {
            Teach(model, random, at);
        }

        var json = JsonSerializer.Serialize(model.State());
        var restored = new CoverModel(settings, Start.AddYears(1), JsonSerializer.Deserialize<CoverModelState>(json));

        Assert.Equal(model.SnapshotAt, restored.SnapshotAt);
        var rate = model.CoverStreamsPerSecond(at);
        Assert.Equal(rate, restored.CoverStreamsPerSecond(at));
        Assert.Equal(Draws(model, 11, at, 2_000), Draws(restored, 11, at, 2_000));
        Assert.All(Enumerable.Range(0, 6), c => Assert.Equal(model.Profile(c), restored.Profile(c)));

        // And on: the next snapshot, taken from what each learned, is the same too.
        var later = at.AddHours(6);
        var laterRate = model.CoverStreamsPerSecond(later);
        Assert.NotEqual(rate, laterRate);
        Assert.Equal(laterRate, restored.CoverStreamsPerSecond(later));
        Assert.Equal(Draws(model, 12, later, 2_000), Draws(restored, 12, later, 2_000));
        Assert.All(Enumerable.Range(0, 6), c => Assert.Equal(model.Profile(c), restored.Profile(c)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(1_000)]
    public void SizeClassOf_AndSizeOf_AreInverse(int minStreamGroups)
    {
        Assert.All(Enumerable.Range(0, StreamShape.SizeClasses), c => Assert.Equal(c, StreamShape.SizeClassOf(StreamShape.SizeOf(c, minStreamGroups), minStreamGroups)));
        Assert.All(Enumerable.Range(1, 5_000), n =>
        {
            var sizeClass = StreamShape.SizeClassOf(n, minStreamGroups);
            Assert.True(StreamShape.SizeOf(sizeClass, minStreamGroups) >= n);
            Assert.True(sizeClass == 0 || StreamShape.SizeOf(sizeClass - 1, minStreamGroups) < n);
        });
    }

    [Fact]
    public void AgeBinOf_RisesWithTheAge_FromZeroToTheLastBin()
    {
        var ages = Enumerable.Range(0, 100_000).Select(a => (long)a).Concat(Enumerable.Range(17, 46).Select(e => 1L << e)).ToList();

        var bins = ages.Select(StreamShape.AgeBinOf).ToList();

        Assert.Equal(0, StreamShape.AgeBinOf(-3));
        Assert.Equal(0, bins[0]);
        Assert.All(bins.Zip(bins.Skip(1)), pair => Assert.True(pair.First <= pair.Second));
        Assert.Equal(StreamShape.AgeBins - 1, StreamShape.AgeBinOf(long.MaxValue));
        Assert.Equal(4 * 20, StreamShape.AgeBinOf((1 << 20) - 1));
    }

    [Fact]
    public void DrawAge_FallsInItsOwnBin()
    {
        // Bins 1, 2, 3, 5 and 7 hold no whole age: 2^(bin/4) - 1 and 2^((bin+1)/4) - 1 have none between them.
        var holding = Enumerable.Range(0, 1 << 16).Select(a => StreamShape.AgeBinOf(a)).Concat(Enumerable.Range(StreamShape.AgeBinOf(1 << 16), StreamShape.AgeBins - StreamShape.AgeBinOf(1 << 16))).ToHashSet();
        Assert.Equal([1, 2, 3, 5, 7], Enumerable.Range(0, StreamShape.AgeBins).Except(holding));
        var random = new Random(4);

        Assert.All(holding.Order(), bin =>
        {
            var shape = new StreamShape(bin, 0, 0);
            var misplaced = Enumerable.Range(0, 2_000).Select(_ => shape.DrawAge(random)).Where(age => StreamShape.AgeBinOf(age) != bin).ToList();
            Assert.True(misplaced.Count == 0, $"bin {bin}: {misplaced.Count} of 2000 ages outside it, e.g. {misplaced.FirstOrDefault()} (bin {StreamShape.AgeBinOf(misplaced.FirstOrDefault())})");
        });
    }

    [Fact]
    public void DrawSpread_FallsInItsOwnBin()
    {
        var random = new Random(5);

        Assert.All(Enumerable.Range(0, StreamShape.SpreadBins), bin =>
        {
            var shape = new StreamShape(0, 0, bin);
            var misplaced = Enumerable.Range(0, 2_000).Select(_ => shape.DrawSpread(random)).Where(spread => StreamShape.SpreadBinOf(spread) != bin).ToList();
            Assert.True(misplaced.Count == 0, $"bin {bin}: {misplaced.Count} of 2000 spreads outside it, e.g. {misplaced.FirstOrDefault():R}");
        });
    }

    [Fact]
    public void AShapesKey_ParsesBackToIt()
    {
        var shapes = new[] { Old, Recent, Large, new StreamShape(StreamShape.AgeBins - 1, StreamShape.SizeClasses - 1, StreamShape.SpreadBins - 1), default };

        Assert.All(shapes, shape => Assert.Equal(shape, StreamShape.Parse(shape.Key)));
    }

    [Theory]
    [InlineData(null, 500.0, 4_096L)]
    [InlineData(null, 40.0, 512L)]
    [InlineData(260.0, 500.0, 2_048L)]
    [InlineData(0.0, 500.0, 0L)]
    public void TheStreamFloor_IsTheSizeClassOfTheDeclaredRetrieval_UnlessSet(double? floorMegabytes, double declaredMegabytes, long groups)
    {
        var options = new ObliviousRetrievalOptions { StreamFloorMegabytes = floorMegabytes, DeclaredRetrievalMegabytes = declaredMegabytes };

        var settings = CoverModelSettings.From(options, 128 * 1024);

        Assert.Equal(groups, settings.StreamFloorGroups);
        Assert.Equal(Math.Max(groups, StreamShape.SizeOf(StreamShape.SizeClassOf((long)Math.Ceiling(declaredMegabytes * 1e6 / (128 * 1024)), 8), 8)), new CoverModel(settings, Start).MeanStreamGroups, 9);
    }

    private static CoverModelSettings Settings(IReadOnlyDictionary<StreamShape, double> prior, double streamsPerSecond, double coverPerWanted = 1, double floorGroupsPerSecond = 0) =>
        new(TimeSpan.FromDays(7), TimeSpan.FromDays(1), coverPerWanted, floorGroupsPerSecond, MinStreamGroups: 8, prior, streamsPerSecond);

    private static double MeanLifeSeconds(CoverModelSettings settings) => settings.HalfLife.TotalSeconds / Math.Log(2);

    private static List<StreamShape> Draws(CoverModel model, int seed, DateTimeOffset at, int count)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => model.Draw(random, at)).ToList();
    }

    /// <summary>One wanted stream of a random shape, its groups at random places in its window.</summary>
    private static void Teach(CoverModel model, Random random, DateTimeOffset at)
    {
        var shape = new StreamShape(random.Next(80), random.Next(6), random.Next(20));
        model.Observe(shape, Enumerable.Range(0, 1 + random.Next(10)).Select(_ => random.NextDouble() * random.NextDouble()).ToList(), at);
    }

    private static void AssertClose(double expected, double actual) =>
        Assert.True(Math.Abs(actual - expected) <= 1e-9 * Math.Abs(expected), $"expected {expected:R}, got {actual:R}");
}
