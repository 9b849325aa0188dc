using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TrustedProxy.ObliviousRetrieval;
using TrustedProxy.Testing;
using TrustedProxy.Testing.UploadCache;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Tests.ObliviousRetrieval;

/// <summary>The read loop's start and stop: what it says reading costs, and the learned model it keeps.</summary>
public sealed class GroupReaderTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero));
    private readonly ServiceProvider _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();

    [Fact]
    public async Task AtStart_TheLoopStatesTheDailyReadCostOfTheDeclaredLoad_AndOnStoppingKeepsItsModelOwnerOnly()
    {
        using var rig = await EngineRig.OpenAsync(_directory.Path, new UploadCacheOptions(), _time);
        var file = Path.Combine(_directory.Path, "retrieval", "cover-model.json");
        var logger = new FakeLogger<GroupReader>();
        var options = new ObliviousRetrievalOptions { DeclaredRetrievalsPerDay = 100, CoverModelFile = file };
        using var reader = new GroupReader(rig.Store, rig.Blocks, rig.Mask, Options.Create(options), Options.Create(rig.Options), _time, new Random(1), _metrics.GetRequiredService<IMeterFactory>(), logger);
        using var stop = new CancellationTokenSource();

        var loop = reader.RunAsync(stop.Token);
        await stop.CancelAsync();
        await loop;

        // 100 streams a day of the declared 500 MB, padded to its class (3,815 blocks of 128 KiB: 4,096).
        var said = Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 4204);
        Assert.Contains("cover now 100 streams a day of about 537 MB, 53.7 GB a day read when nobody asks (floor 5 GB)", said.Message);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        var state = JsonSerializer.Deserialize<CoverModelState>(File.ReadAllText(file))!;
        Assert.NotEmpty(state.Snapshot);

        // The next start reads it back: the same cost, whatever the options now declare.
        var again = new FakeLogger<GroupReader>();
        using var restarted = new GroupReader(rig.Store, rig.Blocks, rig.Mask, Options.Create(options with { DeclaredRetrievalsPerDay = 1 }), Options.Create(rig.Options), _time, new Random(2), _metrics.GetRequiredService<IMeterFactory>(), again);
        Assert.Equal(reader.DailyCost(), restarted.DailyCost());
    }

    public void Dispose()
    {
        _metrics.Dispose();
        _directory.Dispose();
    }
}
