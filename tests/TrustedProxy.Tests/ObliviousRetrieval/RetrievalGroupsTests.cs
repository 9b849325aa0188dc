using TrustedProxy.ObliviousRetrieval;

namespace TrustedProxy.Tests.ObliviousRetrieval;

public sealed class RetrievalGroupsTests
{
    [Fact]
    public void ConsecutiveReleases_FillOneGroupOfNBeforeTheNext()
    {
        var groups = new RetrievalGroups(4);

        var assigned = Enumerable.Range(0, 10).Select(_ => groups.Assign()).ToList();

        Assert.Equal([0L, 0, 0, 0, 1, 1, 1, 1, 2, 2], assigned);
    }

    [Fact]
    public void AfterARestart_TheLastGroupIsFilledUp()
    {
        var full = new RetrievalGroups(4, nextGroup: 7, filledInNext: 4);
        var partial = new RetrievalGroups(4, nextGroup: 7, filledInNext: 3);

        Assert.Equal(8, full.Assign());
        Assert.Equal(7, partial.Assign());
        Assert.Equal(8, partial.Assign());
    }

    [Fact]
    public void AReadPlan_HoldsEveryMemberOnce_InAnOrderThatVaries()
    {
        var members = Enumerable.Range(0, 16).ToList();
        var random = new Random(3);

        var plans = Enumerable.Range(0, 20).Select(_ => RetrievalGroups.ReadPlan(members, random)).ToList();

        Assert.All(plans, p => Assert.Equal(members, p.Order()));
        Assert.True(plans.Select(p => string.Join(",", p)).Distinct().Count() > 15);
    }
}
