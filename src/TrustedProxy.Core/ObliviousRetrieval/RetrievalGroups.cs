using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.ObliviousRetrieval;

/// <summary>Cloud-side oblivious retrieval. Section TrustedProxy:ObliviousRetrieval.</summary>
public sealed record ObliviousRetrievalOptions
{
    /// <summary>
    /// N: objects per retrieval group. Every object released to the cloud joins a group of N
    /// consecutive releases (real blocks of different records and dummies, in the schedule's random
    /// order); reading any member reads the whole group, in random order.
    /// </summary>
    [Range(1, 4096)]
    public int GroupSize { get; init; } = 8;

    /// <summary>
    /// After a record is read from the cloud it is re-encrypted under a fresh envelope index and
    /// released again as new blocks (into new groups) through the upload cache; its old blocks stay
    /// behind as decoys. So the next request for it reads other objects, or none while it waits in
    /// the cache. Off: repeated requests read the same groups, which links them.
    /// </summary>
    public bool RelocateAfterRead { get; init; } = true;

    /// <summary>
    /// A relocated block waits a further uniform random time in [0, this] before it joins the
    /// release schedule (the record is served from the cache meanwhile). Without it, the new copy
    /// is written a schedule delay after the read that moved it, and a later read of objects
    /// written shortly after an earlier request links the two (docs/privacy.md, "Retrieval").
    /// </summary>
    [Range(0, 30 * 86_400)]
    public double RelocationHoldSeconds { get; init; } = 86_400;

    /// <summary>
    /// When groups are read. <c>constant-rate</c>: one group per slot of a Poisson process at
    /// <see cref="ReadsPerSecond"/>, the oldest wanted group first, a random group (a cover read)
    /// when nobody waits; the cloud sees the same stream of reads whether consumers ask or not, so
    /// neither when a request came nor how many blocks it wanted shows. <c>immediate</c>: a
    /// request reads its groups at once; fast, but the burst gives its time and size away.
    /// </summary>
    [AllowedValues(GroupReadQueue.ConstantRate, GroupReadQueue.Immediate)]
    public string Schedule { get; init; } = GroupReadQueue.ConstantRate;

    /// <summary>Group reads per second of the constant-rate schedule (each reads N objects).</summary>
    [Range(0.01, 10_000)]
    public double ReadsPerSecond { get; init; } = 2;
}

/// <summary>
/// Assigns released objects to retrieval groups: the next N releases form one group, whatever
/// they are. A pure counter, so the server and the privacy simulation share it. Not thread-safe:
/// the release loop is its only caller.
/// </summary>
public sealed class RetrievalGroups(int groupSize, long nextGroup = 0, int filledInNext = 0)
{
    private long _group = nextGroup;
    private int _filled = filledInNext;

    public int GroupSize { get; } = groupSize;

    /// <summary>The group of the next released object.</summary>
    public long Assign()
    {
        if (_filled == GroupSize)
        {
            _group++;
            _filled = 0;
        }

        _filled++;
        return _group;
    }

    /// <summary>The objects to read for the wanted ones: every member of their groups, in random order.</summary>
    public static IReadOnlyList<T> ReadPlan<T>(IEnumerable<T> groupMembers, Random random)
    {
        var plan = groupMembers.ToArray();
        random.Shuffle(plan);
        return plan;
    }
}
