namespace TrustedProxy.ObliviousRetrieval;

/// <summary>
/// The constant-rate read schedule: read slots of a Poisson process at a fixed rate, and the
/// groups waiting for one, oldest first. A slot with nothing waiting is a cover read (the caller
/// picks a random group). Pure and clock-free, so the server and the privacy simulation share it.
/// Not thread-safe.
/// </summary>
public sealed class GroupReadQueue
{
    public const string ConstantRate = "constant-rate";
    public const string Immediate = "immediate";

    private readonly Queue<long> _waiting = new();
    private readonly HashSet<long> _queued = [];
    private readonly TimeSpan _meanGap;
    private readonly Random _random;

    public GroupReadQueue(double readsPerSecond, Random random, DateTimeOffset start)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(readsPerSecond);
        _meanGap = TimeSpan.FromSeconds(1 / readsPerSecond);
        _random = random;
        NextSlotAt = start + Gap();
    }

    /// <summary>Groups waiting for a slot.</summary>
    public int Count => _waiting.Count;

    /// <summary>When the next read is due.</summary>
    public DateTimeOffset NextSlotAt { get; private set; }

    /// <summary>Queues a group; false if it already waits (one read serves everybody waiting for it).</summary>
    public bool Want(long group)
    {
        if (!_queued.Add(group))
        {
            return false;
        }

        _waiting.Enqueue(group);
        return true;
    }

    /// <summary>
    /// Takes the slot due at <see cref="NextSlotAt"/> (call at or after it): the group it reads, or
    /// null for a cover read. A caller that fell behind does not catch up in a burst: the next slot
    /// is drawn from now.
    /// </summary>
    public long? TakeSlot(DateTimeOffset now)
    {
        NextSlotAt = (now > NextSlotAt ? now : NextSlotAt) + Gap();
        if (!_waiting.TryDequeue(out var group))
        {
            return null;
        }

        _queued.Remove(group);
        return group;
    }

    private TimeSpan Gap() => TimeSpan.FromTicks((long)(-Math.Log(1.0 - _random.NextDouble()) * _meanGap.Ticks));

    private readonly long[] _lags = new long[1024];
    private long _lagCount;

    /// <summary>
    /// Remembers how far back (in groups, which the constant-rate release makes a measure of time)
    /// a wanted group was, so that cover reads can go back as far.
    /// </summary>
    public void RecordWanted(long group, long lastGroup) => _lags[_lagCount++ % _lags.Length] = Math.Max(0, lastGroup - group);

    /// <summary>
    /// The group of a cover read: as far back as a recently wanted group (drawn from the last 1,024),
    /// uniform over all groups until any was wanted. Cover reads then look like wanted reads in age
    /// too: recent consultations (and relocated records) make wanted reads young, and uniform cover
    /// reads would leave the young reads standing out.
    /// </summary>
    public long CoverGroup(long lastGroup)
    {
        if (_lagCount == 0)
        {
            return _random.NextInt64(lastGroup + 1);
        }

        var lag = _lags[_random.Next((int)Math.Min(_lagCount, _lags.Length))];
        return Math.Max(0, lastGroup - lag);
    }
}
