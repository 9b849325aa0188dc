using TrustedProxy.Records;

namespace TrustedProxy.Tests.Records;

public sealed class KeyedLockTests
{
    [Fact]
    public async Task TheSameKey_WaitsForItsHolder_AnotherKeyDoesNot_AndNothingIsLeftBehind()
    {
        var locks = new KeyedLock<string>();
        var first = await locks.AcquireAsync("a", CancellationToken.None);

        var second = locks.AcquireAsync("a", CancellationToken.None);
        var other = await locks.AcquireAsync("b", CancellationToken.None);

        Assert.False(second.IsCompleted);
        Assert.Equal(2, locks.Count);
        first.Dispose();
        (await second).Dispose();
        other.Dispose();
        Assert.Equal(0, locks.Count);
    }

    [Fact]
    public async Task AWaiterThatGivesUp_LeavesTheLockToTheOthers()
    {
        var locks = new KeyedLock<string>();
        var held = await locks.AcquireAsync("a", CancellationToken.None);
        using var cancel = new CancellationTokenSource();

        var waiting = locks.AcquireAsync("a", cancel.Token);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        held.Dispose();
        Assert.Equal(0, locks.Count);
        (await locks.AcquireAsync("a", CancellationToken.None)).Dispose();
        Assert.Equal(0, locks.Count);
    }
}
