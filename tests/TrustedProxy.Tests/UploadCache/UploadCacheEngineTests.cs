using Microsoft.Extensions.Time.Testing;
using TrustedProxy.Storage;
using TrustedProxy.Testing.UploadCache;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Tests.UploadCache;

/// <summary>The production release loop on virtual time, against a real store and index.</summary>
public sealed class UploadCacheEngineTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);
    private readonly TemporaryDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(Start);

    private static UploadCacheOptions Options => new()
    {
        BlockSizeBytes = 4096,
        SlotsPerSecond = 10,
        PoolThreshold = 20,
        MaxHoldSeconds = 3600,
        AlarmAfterSeconds = 7200,
        RetryBaseSeconds = 30,
        QuarantineMaxSeconds = 600,
    };

    [Fact]
    public async Task WhenTheStoreRefusesEveryDummy_RealBlocksStillLeaveOnSchedule_AndTheRefusalsAreCountedAndAlarmed()
    {
        var real = new HashSet<ObjectName>();
        RefusingObjectStore? front = null;
        using var rig = await EngineRig.OpenAsync(_directory.Path, Options, _time, inner => front = new RefusingObjectStore(inner, name => !real.Contains(name)));
        real.UnionWith((await rig.AdmitRecordAsync(12)).Select(b => b.ObjectName));
        real.UnionWith((await rig.AdmitRecordAsync(8)).Select(b => b.ObjectName));

        await rig.RunForAsync(TimeSpan.FromMinutes(2));

        var s = rig.Engine.Snapshot();
        Assert.Equal(20, s.ReleasedBlocks);
        Assert.Equal(0, s.WaitingBlocks);
        Assert.Equal(real.Select(n => n.ToString()).Order(), (await rig.StoredAsync()).Select(n => n.ToString()).Order());
        var refusedDummies = front!.Attempts.Count(n => !real.Contains(n));
        Assert.True(refusedDummies > 500, $"only {refusedDummies} dummy slots in 2 virtual minutes at 10/s");
        Assert.Equal(refusedDummies, s.RefusedWrites);
        Assert.Equal(refusedDummies, s.BackendErrors);
        Assert.Null(s.BackingOffUntil);
        Assert.True(s.Alarm);
        Assert.Equal((403, "AccessDenied", "dummy"), (s.LastRefusal!.Status, s.LastRefusal.Code, s.LastRefusal.Kind));
        // Refused dummies are gone from the index; only the one made ready for the next slot waits.
        Assert.Single(await rig.Blocks.InStateAsync(BlockState.Cached, BlockKind.Dummy));
        Assert.Contains(rig.Logger.Collector.GetSnapshot(), r => r.Id.Id == 4006 && r.Message.Contains("AccessDenied", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ARefusedRealBlock_WaitsInQuarantine_WhileTheOthersKeepTheirSlots_AndLeavesOnItsOwnBackoff()
    {
        var refusals = 2;
        ObjectName? poisoned = null;
        RefusingObjectStore? front = null;
        using var rig = await EngineRig.OpenAsync(_directory.Path, Options with { PoolThreshold = 1, SlotsPerSecond = 2 }, _time, inner => front = new RefusingObjectStore(
            inner, name => name == poisoned && refusals-- > 0, 400, "BadDigest"));
        var blocks = await rig.AdmitRecordAsync(10);
        poisoned = blocks[3].ObjectName;

        await rig.RunForAsync(TimeSpan.FromSeconds(20));

        var s = rig.Engine.Snapshot();
        Assert.Equal(9, s.ReleasedBlocks);
        Assert.Equal((1, 1, true), (s.QuarantinedBlocks, s.RefusedWrites, s.Alarm));
        Assert.Equal("BadDigest", s.LastRefusal!.Code);
        var quarantined = (await rig.Blocks.FindAsync(blocks[3].Id))!;
        Assert.Equal((1, BlockState.Cached), (quarantined.Refusals, quarantined.State));
        Assert.InRange(quarantined.RetryAt!.Value - Start, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(60));

        await rig.RunForAsync(TimeSpan.FromMinutes(6));

        s = rig.Engine.Snapshot();
        Assert.Equal((10, 0, 2), (s.ReleasedBlocks, s.QuarantinedBlocks, s.RefusedWrites));
        Assert.Equal(BlockState.Released, (await rig.Blocks.FindAsync(blocks[3].Id))!.State);
        Assert.Equal(3, front!.Attempts.Count(n => n == poisoned));
    }

    [Fact]
    public async Task AfterARestart_AQuarantinedBlockIsNotPutFirst_ButOnlyOnceItsRetryTimeHasCome()
    {
        var poisonedOnce = true;
        ObjectName? poisoned = null;
        DateTimeOffset retryAt;
        using (var rig = await EngineRig.OpenAsync(_directory.Path, Options with { PoolThreshold = 1 }, _time, inner => new RefusingObjectStore(
            inner, name => name == poisoned && poisonedOnce)))
        {
            var first = await rig.AdmitRecordAsync(1);
            poisoned = first[0].ObjectName;
            await rig.RunForAsync(TimeSpan.FromSeconds(5));
            retryAt = (await rig.Blocks.FindAsync(first[0].Id))!.RetryAt!.Value;
        }

        poisonedOnce = false;
        RefusingObjectStore? front = null;
        using var restarted = await EngineRig.OpenAsync(_directory.Path, Options with { PoolThreshold = 1 }, _time, inner => front = new RefusingObjectStore(inner, _ => false));
        Assert.Equal(1, restarted.Engine.Snapshot().QuarantinedBlocks);
        var others = await restarted.AdmitRecordAsync(3);

        await restarted.RunUntilAsync(retryAt - TimeSpan.FromSeconds(1));
        Assert.DoesNotContain(poisoned!.Value, front!.Attempts);
        Assert.Equal(others.Select(b => b.ObjectName.ToString()).Order(), front.Attempts.Where(n => others.Any(o => o.ObjectName == n)).Select(n => n.ToString()).Order());

        await restarted.RunForAsync(TimeSpan.FromMinutes(1));
        Assert.Contains(poisoned!.Value, front.Attempts);
        Assert.Equal(0, restarted.Engine.Snapshot().QuarantinedBlocks);
    }

    [Fact]
    public async Task ADummyAnOutageKeptFromTheCloud_IsTheNextDummyWritten_UnderItsName_AndNoOthersPileUp()
    {
        var down = true;
        var puts = new List<(DateTimeOffset At, ObjectName Name)>();
        using var rig = await EngineRig.OpenAsync(_directory.Path, Options with { RetryBaseSeconds = 1, RetryMaxSeconds = 2 }, _time, inner => new OutageStore(inner, () => down, (name) => puts.Add((_time.GetUtcNow(), name))));

        await rig.RunForAsync(TimeSpan.FromSeconds(5));
        var waitingDummy = Assert.Single(await rig.Blocks.InStateAsync(BlockState.Cached, BlockKind.Dummy));
        down = false;
        await rig.RunForAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(waitingDummy.ObjectName, puts[0].Name);
        Assert.Equal(puts.Count, puts.Select(p => p.Name).Distinct().Count());
        Assert.InRange(puts.Count, 150, 450);
        Assert.Single(await rig.Blocks.InStateAsync(BlockState.Cached, BlockKind.Dummy));
    }

    public void Dispose() => _directory.Dispose();

    /// <summary>A store that is down while told so (the SDKs' transient failure), recording each put it accepts.</summary>
    private sealed class OutageStore(IObjectStore inner, Func<bool> down, Action<ObjectName> accepted) : IObjectStore
    {
        public string Name => inner.Name;

        public Task<PutResult> PutIfAbsentAsync(ObjectName name, Stream content, long length, CancellationToken cancellationToken)
        {
            if (down())
            {
                throw new BackendUnavailableException(inner.Name, new IOException("connection refused"));
            }

            accepted(name);
            return inner.PutIfAbsentAsync(name, content, length, cancellationToken);
        }

        public Task<Stream> OpenReadAsync(ObjectName name, CancellationToken cancellationToken) => inner.OpenReadAsync(name, cancellationToken);

        public Task<bool> DeleteAsync(ObjectName name, CancellationToken cancellationToken) => inner.DeleteAsync(name, cancellationToken);

        public Task<bool> ExistsAsync(ObjectName name, CancellationToken cancellationToken) => inner.ExistsAsync(name, cancellationToken);

        public IAsyncEnumerable<StoredObject> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);
    }
}
