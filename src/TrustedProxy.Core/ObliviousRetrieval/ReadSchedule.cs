namespace TrustedProxy.ObliviousRetrieval;

/// <summary>One group to read in an epoch: the stream it belongs to, and whether a request waits for it (ground truth; the cloud cannot tell).</summary>
public readonly record struct EpochRead(long Group, long Stream, bool Wanted);

/// <summary>The privacy harness's broken schedules, each the control of one classifier; never configured.</summary>
internal enum ReadScheduleControl
{
    None,

    /// <summary>Epochs at the times of a Poisson process (mean one epoch) instead of a fixed clock: a request is served by the epoch after it, which follows a longer gap.</summary>
    PoissonEpochs,

    /// <summary>A cover stream re-reads the groups of the last wanted stream instead of drawing its own.</summary>
    ReplayRecentWanted,
}

/// <summary>
/// The epoch read schedule. Reads happen only at the ticks of a fixed clock (one epoch apart, from
/// a random phase), whatever requests come. What is read is organised in streams: a request's
/// groups become one stream, padded with groups from its own window up to a size class (the
/// smallest class times a power of two) so that its size shows only as its class; cover streams
/// start at random ticks at the rate the <see cref="CoverModel"/> gives and take their age, size
/// class and spread from it. Up to <see cref="ObliviousRetrievalOptions.MaxStreams"/> streams are
/// read at once, each its next <see cref="ObliviousRetrievalOptions.GroupsPerEpoch"/> groups per
/// epoch, all of an epoch's reads in one random order. A stream, once started, is read to its end
/// (a cancelled request's too), so how a stream goes never depends on whether anybody still waits.
/// Pure and clock-free: the server and the privacy harness drive it alike. Not thread-safe.
/// </summary>
public sealed class ReadSchedule
{
    private readonly ObliviousRetrievalOptions _options;
    private readonly CoverModel _cover;
    private readonly Random _random;
    private readonly ReadScheduleControl _control;
    private readonly TimeSpan _epoch;
    private readonly Queue<Stream> _waiting = new();
    private readonly List<Stream> _active = [];
    private long _nextStream = 1;
    private long[] _lastWanted = [];

    public ReadSchedule(ObliviousRetrievalOptions options, CoverModel cover, Random random, DateTimeOffset start)
        : this(options, cover, random, start, ReadScheduleControl.None)
    {
    }

    internal ReadSchedule(ObliviousRetrievalOptions options, CoverModel cover, Random random, DateTimeOffset start, ReadScheduleControl control)
    {
        _options = options;
        _cover = cover;
        _random = random;
        _control = control;
        _epoch = TimeSpan.FromSeconds(options.EpochSeconds);
        NextEpochAt = start + _epoch * random.NextDouble();
    }

    /// <summary>When the next epoch is due.</summary>
    public DateTimeOffset NextEpochAt { get; private set; }

    /// <summary>Request streams waiting for room.</summary>
    public int Waiting => _waiting.Count;

    /// <summary>Streams being read.</summary>
    public int Active => _active.Count;

    /// <summary>
    /// Queues a request's groups (in the order it needs them) as one stream; returns its id. The
    /// padding comes from the same window of groups, so that the stream's span and density are
    /// what the request's own are.
    /// </summary>
    public long Want(IReadOnlyList<long> groups, long lastGroup)
    {
        var wanted = groups.Distinct().ToArray();
        if (wanted.Length == 0)
        {
            throw new ArgumentException("a stream needs at least one group", nameof(groups));
        }

        var size = Math.Max(wanted.Length, Math.Min(StreamShape.SizeOf(StreamShape.SizeClassOf(wanted.Length, _options.MinStreamGroups), _options.MinStreamGroups), lastGroup + 1));
        var lo = wanted.Min();
        var hi = wanted.Max();
        var taken = wanted.ToHashSet();
        var padding = size - wanted.Length;

        // Widen the window until it has room for the padding, by a random share on each side, so
        // that where the wanted groups sit in it is uniform, as a cover stream's are in its own.
        var room = hi - lo + 1 - wanted.Length;
        if (room < padding)
        {
            var extra = padding - room;
            var down = Math.Min(lo, _random.NextInt64(extra + 1));
            var up = Math.Min(lastGroup - hi, extra - down);
            down = Math.Min(lo, extra - up);
            lo -= down;
            hi += up;
        }

        var pad = Sample(lo, hi, padding, taken);
        var order = new Slot[wanted.Length + pad.Length];
        var padAt = Sample(0, order.Length - 1, pad.Length, []).ToHashSet();
        for (int i = 0, w = 0, p = 0; i < order.Length; i++)
        {
            order[i] = padAt.Contains(i) ? new Slot(pad[p++], false) : new Slot(wanted[w++], true);
        }

        var stream = new Stream(_nextStream++, order, Cover: false);
        _waiting.Enqueue(stream);
        return stream.Id;
    }

    /// <summary>
    /// Takes the epoch due at <see cref="NextEpochAt"/> (call at or after it): the groups to read
    /// now, in random order (none when no stream is active). A caller that fell behind does not catch
    /// up: the next epoch is one period from now.
    /// </summary>
    public IReadOnlyList<EpochRead> TakeEpoch(DateTimeOffset now, long lastGroup)
    {
        var gap = _control == ReadScheduleControl.PoissonEpochs ? TimeSpan.FromTicks((long)(-Math.Log(1 - _random.NextDouble()) * _epoch.Ticks)) : _epoch;
        NextEpochAt = (now - NextEpochAt > _epoch ? now : NextEpochAt) + gap;
        if (lastGroup < 0)
        {
            return [];
        }

        // Cover first, on its own coin: whether a request waits changes nothing about it.
        var rate = _cover.CoverStreamsPerSecond(now);
        if (_random.NextDouble() < 1 - Math.Exp(-rate * _epoch.TotalSeconds) && _active.Count < _options.MaxStreams)
        {
            _active.Add(CoverStream(lastGroup, now));
        }

        while (_waiting.Count > 0 && _active.Count < _options.MaxStreams)
        {
            var stream = _waiting.Dequeue();
            var max = stream.Groups.Max(s => s.Group);
            var min = stream.Groups.Min(s => s.Group);
            _cover.Observe(new StreamShape(
                StreamShape.AgeBinOf(lastGroup - max),
                StreamShape.SizeClassOf(stream.Groups.Length, _options.MinStreamGroups),
                StreamShape.SpreadBinOf((double)(max - min + 1) / stream.Groups.Length)), now);
            _lastWanted = stream.Groups.Select(s => s.Group).ToArray();
            _active.Add(stream);
        }

        var reads = new List<EpochRead>();
        foreach (var stream in _active)
        {
            var end = Math.Min(stream.Groups.Length, stream.Next + _options.GroupsPerEpoch);
            for (; stream.Next < end; stream.Next++)
            {
                var slot = stream.Groups[stream.Next];
                reads.Add(new EpochRead(slot.Group, stream.Id, slot.Wanted && !stream.Cover));
            }
        }

        _active.RemoveAll(s => s.Next == s.Groups.Length);
        var plan = reads.ToArray();
        _random.Shuffle(plan);
        return plan;
    }

    private Stream CoverStream(long lastGroup, DateTimeOffset now)
    {
        if (_control == ReadScheduleControl.ReplayRecentWanted && _lastWanted.Length > 0)
        {
            return new Stream(-_nextStream++, _lastWanted.Select(g => new Slot(g, false)).ToArray(), Cover: true);
        }

        var shape = _cover.Draw(_random, now);
        var size = Math.Min(StreamShape.SizeOf(shape.SizeClass, _options.MinStreamGroups), lastGroup + 1);
        var span = Math.Min(lastGroup + 1, Math.Max(size, (long)Math.Ceiling(size * shape.DrawSpread(_random))));
        var age = shape.DrawAge(_random);
        var hi = age <= lastGroup ? lastGroup - age : _random.NextInt64(lastGroup + 1);
        var lo = hi - span + 1;
        if (lo < 0)
        {
            lo = 0;
            hi = span - 1;
        }

        return new Stream(-_nextStream++, Sample(lo, hi, size, []).Select(g => new Slot(g, false)).ToArray(), Cover: true);
    }

    /// <summary>Up to <paramref name="count"/> distinct numbers from [lo, hi] outside <paramref name="exclude"/>, uniformly, in random order.</summary>
    private long[] Sample(long lo, long hi, long count, HashSet<long> exclude)
    {
        var free = hi - lo + 1 - exclude.Count(x => x >= lo && x <= hi);
        count = Math.Min(count, Math.Max(0, free));
        if (count <= 0)
        {
            return [];
        }

        if (count * 3 > free)
        {
            // Dense: shuffle the free range and take a prefix.
            var all = new List<long>((int)free);
            for (var x = lo; x <= hi; x++)
            {
                if (!exclude.Contains(x))
                {
                    all.Add(x);
                }
            }

            var array = all.ToArray();
            _random.Shuffle(array);
            return array[..(int)count];
        }

        var chosen = new HashSet<long>();
        var result = new long[count];
        for (var i = 0; i < count;)
        {
            var x = lo + _random.NextInt64(hi - lo + 1);
            if (!exclude.Contains(x) && chosen.Add(x))
            {
                result[i++] = x;
            }
        }

        return result;
    }

    private readonly record struct Slot(long Group, bool Wanted);

    private sealed record Stream(long Id, Slot[] Groups, bool Cover)
    {
        public int Next { get; set; }
    }
}
