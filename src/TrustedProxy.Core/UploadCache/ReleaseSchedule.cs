namespace TrustedProxy.UploadCache;

/// <summary>A real block waiting in the cache, as the schedule knows it: an id and two times, nothing about its record.</summary>
/// <param name="Id">The block's row id in the index.</param>
/// <param name="AdmittedAt">When it entered the cache.</param>
/// <param name="DueAt">The schedule's own deadline for it (its drawn hold, or the max-hold flush).</param>
public readonly record struct PendingBlock(long Id, DateTimeOffset AdmittedAt, DateTimeOffset DueAt);

/// <summary>One write to the backend: a waiting block, or a dummy when <see cref="Block"/> is null.</summary>
public readonly record struct Release(PendingBlock? Block)
{
    public static Release Dummy => new(null);

    public bool IsDummy => Block is null;
}

/// <summary>
/// Decides when blocks leave the cache and when dummies are written. A schedule is a pure state
/// machine over the times and random draws it is given, so the server's cache and the privacy
/// simulation run the very same code. Not thread-safe: the owner serializes calls.
/// </summary>
public interface IReleaseSchedule
{
    /// <summary>The configuration name.</summary>
    string Name { get; }

    /// <summary>Number of real blocks waiting.</summary>
    int Count { get; }

    /// <summary>The oldest waiting block's admission time.</summary>
    DateTimeOffset? OldestAdmittedAt { get; }

    /// <summary>Draws the deadline of a block admitted at <paramref name="admittedAt"/> (its hold, or its max-hold flush).</summary>
    DateTimeOffset DrawDeadline(DateTimeOffset admittedAt);

    /// <summary>Takes in a block; with <paramref name="dueAt"/> null (a new block) the schedule draws its deadline.</summary>
    PendingBlock Admit(long id, DateTimeOffset admittedAt, DateTimeOffset? dueAt = null);

    /// <summary>Forgets a waiting block (its record was deleted before release); false if unknown.</summary>
    bool Remove(long id);

    /// <summary>When <see cref="Take"/> next has something to do.</summary>
    DateTimeOffset NextEventAt(DateTimeOffset now);

    /// <summary>The writes due at <paramref name="now"/>, in the order to perform them; the blocks returned are no longer waiting.</summary>
    IReadOnlyList<Release> Take(DateTimeOffset now);
}

/// <summary>The registered schedules, by name.</summary>
public static class ReleaseSchedules
{
    public static IReadOnlyCollection<string> Names { get; } = [ConstantRateSchedule.ScheduleName, ExponentialHoldSchedule.ScheduleName];

    public static IReleaseSchedule Create(UploadCacheOptions options, Random random, DateTimeOffset now) => options.Schedule switch
    {
        ConstantRateSchedule.ScheduleName => new ConstantRateSchedule(options.SlotsPerSecond, options.PoolThreshold, options.MaxHold, random, now),
        ExponentialHoldSchedule.ScheduleName => new ExponentialHoldSchedule(
            TimeSpan.FromSeconds(options.MeanHoldSeconds), TimeSpan.FromSeconds(options.MinHoldSeconds), options.MaxHold, options.PoolThreshold, options.CoverPerSecond, random, now),
        _ => throw new ArgumentException($"unknown schedule '{options.Schedule}'; choose one of: {string.Join(", ", Names)}"),
    };

    /// <summary>An exponential draw with the given mean.</summary>
    internal static TimeSpan Exponential(Random random, TimeSpan mean) =>
        mean <= TimeSpan.Zero ? TimeSpan.Zero : TimeSpan.FromTicks((long)(-Math.Log(1.0 - random.NextDouble()) * mean.Ticks));
}

/// <summary>
/// The waiting blocks: uniform random choice and removal in O(1), oldest in O(log n). Shared by both schedules.
/// </summary>
internal sealed class BlockPool
{
    private readonly List<PendingBlock> _blocks = [];
    private readonly Dictionary<long, int> _position = [];
    private readonly SortedSet<(DateTimeOffset At, long Id)> _byAdmission = [];

    public int Count => _blocks.Count;

    public PendingBlock? Oldest => _byAdmission.Count == 0 ? null : _blocks[_position[_byAdmission.Min.Id]];

    public void Add(PendingBlock block)
    {
        if (!_position.TryAdd(block.Id, _blocks.Count))
        {
            throw new InvalidOperationException($"block {block.Id} is already waiting");
        }

        _blocks.Add(block);
        _byAdmission.Add((block.AdmittedAt, block.Id));
    }

    public PendingBlock RandomBlock(Random random) => _blocks[random.Next(_blocks.Count)];

    public bool TryGet(long id, out PendingBlock block)
    {
        block = default;
        if (!_position.TryGetValue(id, out var at))
        {
            return false;
        }

        block = _blocks[at];
        return true;
    }

    public bool Remove(long id)
    {
        if (!_position.Remove(id, out var at))
        {
            return false;
        }

        var removed = _blocks[at];
        var last = _blocks[^1];
        _blocks[at] = last;
        _blocks.RemoveAt(_blocks.Count - 1);
        if (last.Id != id)
        {
            _position[last.Id] = at;
        }

        _byAdmission.Remove((removed.AdmittedAt, removed.Id));
        return true;
    }
}

/// <summary>
/// Input-independent release (the default): writes happen at the events of a Poisson process of
/// fixed rate, whatever the hospitals send. Each slot carries a uniformly chosen waiting block with
/// probability min(1, n/k) for n waiting blocks and pool threshold k, and a dummy otherwise; a
/// block past its max hold takes the next slot. What the cloud sees (when, how many, what size) is
/// then the same at any load below the slot rate; a backlog absorbs bursts.
/// </summary>
public sealed class ConstantRateSchedule : IReleaseSchedule
{
    public const string ScheduleName = "constant-rate";

    private readonly BlockPool _pool = new();
    private readonly TimeSpan _meanGap;
    private readonly int _threshold;
    private readonly TimeSpan _maxHold;
    private readonly Random _random;
    private DateTimeOffset _nextSlot;

    public ConstantRateSchedule(double slotsPerSecond, int poolThreshold, TimeSpan maxHold, Random random, DateTimeOffset now)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slotsPerSecond);
        _meanGap = TimeSpan.FromSeconds(1 / slotsPerSecond);
        _threshold = Math.Max(1, poolThreshold);
        _maxHold = maxHold;
        _random = random;
        _nextSlot = now + ReleaseSchedules.Exponential(random, _meanGap);
    }

    public string Name => ScheduleName;

    public int Count => _pool.Count;

    public DateTimeOffset? OldestAdmittedAt => _pool.Oldest?.AdmittedAt;

    public DateTimeOffset DrawDeadline(DateTimeOffset admittedAt) => admittedAt + _maxHold;

    public PendingBlock Admit(long id, DateTimeOffset admittedAt, DateTimeOffset? dueAt = null)
    {
        var block = new PendingBlock(id, admittedAt, dueAt ?? DrawDeadline(admittedAt));
        _pool.Add(block);
        return block;
    }

    public bool Remove(long id) => _pool.Remove(id);

    public DateTimeOffset NextEventAt(DateTimeOffset now) => _nextSlot;

    public IReadOnlyList<Release> Take(DateTimeOffset now)
    {
        if (now < _nextSlot)
        {
            return [];
        }

        // After a stall (an outage, a busy machine) the schedule resumes at its rate instead of
        // catching up with a burst of missed slots.
        _nextSlot = (now - _nextSlot > 100 * _meanGap ? now : _nextSlot) + ReleaseSchedules.Exponential(_random, _meanGap);

        if (_pool.Oldest is { } oldest && oldest.DueAt <= now)
        {
            _pool.Remove(oldest.Id);
            return [new Release(oldest)];
        }

        var n = _pool.Count;
        if (n > 0 && _random.NextDouble() * _threshold < n)
        {
            var chosen = _pool.RandomBlock(_random);
            _pool.Remove(chosen.Id);
            return [new Release(chosen)];
        }

        return [Release.Dummy];
    }
}

/// <summary>
/// Haas et al.'s randomizing cache: every block gets an independent hold time, exponential with the
/// given mean and clamped to [min, max], and leaves when it is due (so the order of release is
/// unrelated to the order of arrival); with a pool threshold k, due blocks leave only while at least
/// k are waiting, except those past max hold. Dummies are a separate Poisson process. The write rate
/// still follows the upload rate, smoothed: see docs/privacy.md.
/// </summary>
public sealed class ExponentialHoldSchedule : IReleaseSchedule
{
    public const string ScheduleName = "exponential-hold";

    private readonly BlockPool _pool = new();
    private readonly SortedSet<(DateTimeOffset DueAt, long Id)> _byDue = [];
    private readonly TimeSpan _mean;
    private readonly TimeSpan _min;
    private readonly TimeSpan _max;
    private readonly int _threshold;
    private readonly TimeSpan? _meanCoverGap;
    private readonly Random _random;
    private DateTimeOffset _nextCover;

    public ExponentialHoldSchedule(TimeSpan meanHold, TimeSpan minHold, TimeSpan maxHold, int poolThreshold, double coverPerSecond, Random random, DateTimeOffset now)
    {
        _mean = meanHold;
        _min = minHold;
        _max = maxHold;
        _threshold = poolThreshold;
        _random = random;
        _meanCoverGap = coverPerSecond > 0 ? TimeSpan.FromSeconds(1 / coverPerSecond) : null;
        _nextCover = _meanCoverGap is { } gap ? now + ReleaseSchedules.Exponential(random, gap) : DateTimeOffset.MaxValue;
    }

    public string Name => ScheduleName;

    public int Count => _pool.Count;

    public DateTimeOffset? OldestAdmittedAt => _pool.Oldest?.AdmittedAt;

    public DateTimeOffset DrawDeadline(DateTimeOffset admittedAt)
    {
        var hold = ReleaseSchedules.Exponential(_random, _mean);
        return admittedAt + (hold < _min ? _min : hold > _max ? _max : hold);
    }

    public PendingBlock Admit(long id, DateTimeOffset admittedAt, DateTimeOffset? dueAt = null)
    {
        var block = new PendingBlock(id, admittedAt, dueAt ?? DrawDeadline(admittedAt));
        _pool.Add(block);
        _byDue.Add((block.DueAt, block.Id));
        return block;
    }

    public bool Remove(long id)
    {
        if (!_pool.TryGet(id, out var block))
        {
            return false;
        }

        _pool.Remove(id);
        _byDue.Remove((block.DueAt, id));
        return true;
    }

    public DateTimeOffset NextEventAt(DateTimeOffset now)
    {
        var next = _nextCover;
        if (_pool.Count > 0)
        {
            var due = _pool.Count >= _threshold ? _byDue.Min.DueAt : _pool.Oldest!.Value.AdmittedAt + _max;
            next = due < next ? due : next;
        }

        return next;
    }

    public IReadOnlyList<Release> Take(DateTimeOffset now)
    {
        var due = new List<PendingBlock>();
        foreach (var (dueAt, id) in _byDue)
        {
            if (dueAt > now)
            {
                break;
            }

            _pool.TryGet(id, out var block);
            due.Add(block);
        }

        // Shuffled, so that blocks due at the same instant do not leave in admission order.
        var shuffled = due.ToArray();
        _random.Shuffle(shuffled);
        var releases = new List<Release>();
        foreach (var block in shuffled)
        {
            var overdue = now - block.AdmittedAt >= _max;
            if (overdue || _pool.Count >= _threshold)
            {
                Remove(block.Id);
                releases.Add(new Release(block));
            }
        }

        if (now >= _nextCover)
        {
            releases.Insert(_random.Next(releases.Count + 1), Release.Dummy);
            _nextCover = (now - _nextCover > 100 * _meanCoverGap!.Value ? now : _nextCover) + ReleaseSchedules.Exponential(_random, _meanCoverGap!.Value);
        }

        return releases;
    }
}
