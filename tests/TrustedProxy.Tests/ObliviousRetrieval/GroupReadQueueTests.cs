using TrustedProxy.ObliviousRetrieval;

namespace TrustedProxy.Tests.ObliviousRetrieval;

public sealed class GroupReadQueueTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Slots_ComeAtTheConfiguredRate_WhetherAnybodyWantsAGroupOrNot()
    {
        var queue = new GroupReadQueue(readsPerSecond: 4, new Random(1), Start);
        var covers = 0;
        for (var i = 0; i < 20_000; i++)
        {
            covers += queue.TakeSlot(queue.NextSlotAt) is null ? 1 : 0;
        }

        var rate = 20_000 / (queue.NextSlotAt - Start).TotalSeconds;
        Assert.InRange(rate, 3.9, 4.1);
        Assert.Equal(20_000, covers);
    }

    [Fact]
    public void WantedGroups_TakeTheNextSlots_OldestFirst_EachReadOnceForEveryoneWaiting()
    {
        var queue = new GroupReadQueue(1, new Random(2), Start);
        Assert.True(queue.Want(7));
        Assert.True(queue.Want(3));
        Assert.False(queue.Want(7));

        Assert.Equal(2, queue.Count);
        Assert.Equal(7, queue.TakeSlot(queue.NextSlotAt));
        Assert.True(queue.Want(7), "once read, a group can be wanted again");
        Assert.Equal(3, queue.TakeSlot(queue.NextSlotAt));
        Assert.Equal(7, queue.TakeSlot(queue.NextSlotAt));
        Assert.Null(queue.TakeSlot(queue.NextSlotAt));
    }

    [Fact]
    public void AReaderThatFellBehind_DoesNotCatchUpInABurst()
    {
        var queue = new GroupReadQueue(10, new Random(3), Start);
        var late = Start.AddHours(1);

        queue.TakeSlot(late);

        Assert.True(queue.NextSlotAt > late);
    }
}
