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

    /// <summary>A request's stream is its groups alone, not padded to a size class.</summary>
    NoPadding,
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
    /// <param name="groups">The wanted groups, in the order they are needed.</param>
    /// <param name="lastGroup">The newest group written.</param>
    /// <param name="localGroups">
    /// Groups' worth of the request that the proxy serves itself (records still local): they
    /// count towards the size class, so that the class is the request's, wherever its records are.
    /// </param>
    /// <param name="avoid">
    /// Groups the padding must not take (for example the other records of the request's own study,
    /// which a later request for the study would read as wanted); null: none.
    /// </param>
    public long Want(IReadOnlyList<long> groups, long lastGroup, long localGroups = 0, IReadOnlyCollection<long>? avoid = null)
    {
        var wanted = groups.Distinct().ToArray();
        if (wanted.Length == 0)
        {
            throw new ArgumentException("a stream needs at least one group", nameof(groups));
        }

        var size = Math.Max(wanted.Length, Math.Min(StreamShape.SizeOf(StreamShape.SizeClassOf(wanted.Length + Math.Max(0, localGroups), _options.MinStreamGroups), _options.MinStreamGroups), lastGroup + 1));
        var lo = wanted.Min();
        var hi = wanted.Max();
        var taken = wanted.ToHashSet();
        if (avoid is not null)
        {
            taken.UnionWith(avoid);
        }

        var padding = _control == ReadScheduleControl.NoPadding ? 0 : size - wanted.Length;

        // Padding lies near the wanted groups (each next to one drawn at random, further out where
        // they are crowded), so that the stream is as dense where they are as they are, and its
        // padding reads are like its wanted ones.
        var pad = Near(wanted, padding, taken, Math.Max(4L, (hi - lo + 1) / wanted.Length), lastGroup);
        var order = new Slot[wanted.Length + pad.Count];
        var padAt = Sample(0, order.Length - 1, pad.Count, []).ToHashSet();
        for (int i = 0, w = 0, p = 0; i < order.Length; i++)
        {
            order[i] = padAt.Contains(i) ? new Slot(pad[p++], false) : new Slot(wanted[w++], true);
        }

        var stream = new Stream(_nextStream++, order, Cover: false) { WantedMin = lo, WantedMax = hi };
        _waiting.Enqueue(stream);
        return stream.Id;
    }

    /// <summary>
    /// Queues, for a request the proxy serves entirely itself, the stream a request of
    /// <paramref name="localGroups"/> groups would start: shaped as cover is (from the model, in the
    /// request's size class), in the same queue as requests. Nobody waits for it; the cloud sees a
    /// stream follow the request as one follows every request.
    /// </summary>
    public long WantLocal(long localGroups, long lastGroup, DateTimeOffset now)
    {
        var stream = CoverStream(lastGroup, now, StreamShape.SizeClassOf(Math.Max(1, localGroups), _options.MinStreamGroups));
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

        // Cover on its own coin, whatever requests do: the epoch's count of a Poisson process at
        // the model's rate (two may start together, as two requests may). It queues for room as
        // requests do, so that neither kind is read more when the other is busy.
        var rate = _cover.CoverStreamsPerSecond(now);
        for (var arrivals = Arrivals(rate * _epoch.TotalSeconds, _random.NextDouble(), 64); arrivals > 0; arrivals--)
        {
            _waiting.Enqueue(CoverStream(lastGroup, now));
        }

        while (_waiting.Count > 0 && _active.Count < _options.MaxStreams)
        {
            var stream = _waiting.Dequeue();
            if (!stream.Cover)
            {
                // What cover copies is the wanted groups' shape: how far back, how spread, how dense
                // where (the padding, drawn near them, follows them). The floor's tail is not part
                // of it: cover streams get theirs the same way.
                var (min, max) = (stream.WantedMin, stream.WantedMax);
                _cover.Observe(
                    new StreamShape(
                        StreamShape.AgeBinOf(lastGroup - max),
                        StreamShape.SizeClassOf(stream.Groups.Length, _options.MinStreamGroups),
                        StreamShape.SpreadBinOf((double)(max - min + 1) / stream.Groups.Length)),
                    stream.Groups.Where(s => s.Wanted).Select(s => max == min ? 0.5 : (double)(s.Group - min) / (max - min)).ToList(),
                    now);
            }

            var started = ToFloor(stream, lastGroup, now);
            if (_control == ReadScheduleControl.ReplayRecentWanted && !stream.Cover)
            {
                // Only the control that replays the last request keeps it; the product keeps no
                // copy of what was wanted.
                _lastWanted = started.Groups.Select(s => s.Group).ToArray();
            }
            _active.Add(started);
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

    /// <summary>
    /// The count of a Poisson variable of this mean at the uniform <paramref name="u"/> (the inverse
    /// of its distribution), up to <paramref name="most"/>. One draw, and at least one exactly when the
    /// coin u &lt; 1 - exp(-mean) would have started one.
    /// </summary>
    private static int Arrivals(double mean, double u, int most)
    {
        var above = 1 - u;
        var logTerm = -mean;
        var cumulative = Math.Exp(logTerm);
        var count = 0;
        while (count < most && above > cumulative)
        {
            count++;
            logTerm += Math.Log(mean) - Math.Log(count);
            cumulative += Math.Exp(logTerm);
        }

        return count;
    }

    private Stream CoverStream(long lastGroup, DateTimeOffset now, int? sizeClass = null)
    {
        if (_control == ReadScheduleControl.ReplayRecentWanted && _lastWanted.Length > 0)
        {
            return new Stream(-_nextStream++, _lastWanted.Select(g => new Slot(g, false)).ToArray(), Cover: true);
        }

        // A local request's stream has the request's class but a place drawn whatever the class:
        // drawn among the model's shapes of that class, two requests of one study (one class, a
        // class few requests have) would read the same region of the store minutes apart, and
        // overlap would link them.
        var shape = sizeClass is { } c ? _cover.Draw(_random, now) with { SizeClass = c } : _cover.Draw(_random, now);
        var size = Math.Min(StreamShape.SizeOf(shape.SizeClass, _options.MinStreamGroups), lastGroup + 1);
        return new Stream(-_nextStream++, Shaped(shape, size, lastGroup, []).Select(g => new Slot(g, false)).ToArray(), Cover: true);
    }

    /// <summary>
    /// A stream below the floor, as it starts, filled up to it with cover groups drawn from the
    /// model (a shape drawn as a cover stream's is: age, spread, profile), requests and cover streams
    /// alike, so that every stream up to the floor reads the same number of objects and its fill is
    /// drawn the same way whoever started it. The stream's own groups keep their order but take
    /// random places among the fill: were they read first, the first epochs of a stream would hold
    /// every wanted read and its last ones none, and a read's place in its stream (how near it lies
    /// to the stream's earlier reads) would tell wanted from cover. The price is latency: a small
    /// request waits, on average, half the floor's epochs. (The broken control without padding
    /// leaves requests short; the replay control's cover is already a whole stream.)
    /// </summary>
    private Stream ToFloor(Stream stream, long lastGroup, DateTimeOffset now)
    {
        var floor = Math.Min(_cover.StreamFloorGroups, lastGroup + 1);
        var missing = floor - stream.Groups.Length;
        if (missing <= 0
            || (_control == ReadScheduleControl.NoPadding && !stream.Cover)
            || (_control == ReadScheduleControl.ReplayRecentWanted && stream.Cover && _lastWanted.Length > 0))
        {
            return stream;
        }

        var taken = stream.Groups.Select(s => s.Group).ToHashSet();
        // The fill's place is drawn whatever the stream's size (see CoverStream): its size, the
        // floor less the request's class, is the same for two requests of one study.
        var fill = Shaped(_cover.Draw(_random, now), missing, lastGroup, taken);
        var total = stream.Groups.Length + fill.Length;
        var own = Sample(0, total - 1, stream.Groups.Length, []).Order().ToArray();
        var groups = new Slot[total];
        for (int i = 0, o = 0, f = 0; i < total; i++)
        {
            groups[i] = o < own.Length && own[o] == i ? stream.Groups[o++] : new Slot(fill[f++], false);
        }

        return stream with { Groups = groups };
    }

    /// <summary>
    /// <paramref name="size"/> groups not yet <paramref name="taken"/> (adds them), laid out as the
    /// shape says: a window of size × spread ending the shape's age back, filled by its class's profile.
    /// </summary>
    private long[] Shaped(StreamShape shape, long size, long lastGroup, HashSet<long> taken)
    {
        var span = Math.Min(lastGroup + 1, Math.Max(size, (long)Math.Ceiling(size * shape.DrawSpread(_random))));
        var age = shape.DrawAge(_random);
        var hi = age <= lastGroup ? lastGroup - age : _random.NextInt64(lastGroup + 1);
        var lo = hi - span + 1;
        if (lo < 0)
        {
            lo = 0;
            hi = span - 1;
        }

        return FromProfile(lo, hi, size, _cover.Profile(shape.SizeClass), lastGroup, taken);
    }

    /// <summary><paramref name="count"/> distinct groups of [lo, hi] not yet <paramref name="taken"/> (adds them), placed by the profile's weights, in random order.</summary>
    private long[] FromProfile(long lo, long hi, long count, IReadOnlyList<double> profile, long lastGroup, HashSet<long> taken)
    {
        var cumulative = new double[profile.Count];
        var sum = 0.0;
        for (var i = 0; i < profile.Count; i++)
        {
            cumulative[i] = sum += profile[i];
        }

        var width = (hi - lo + 1) / (double)profile.Count;
        var chosen = new HashSet<long>();
        for (var attempts = 0; chosen.Count < count && attempts < 64 * count; attempts++)
        {
            var bin = Array.BinarySearch(cumulative, _random.NextDouble() * sum);
            bin = Math.Min(bin < 0 ? ~bin : bin, profile.Count - 1);
            var x = Math.Clamp(lo + (long)Math.Floor((bin + _random.NextDouble()) * width), lo, hi);
            if (!taken.Contains(x))
            {
                chosen.Add(x);
            }
        }

        // A window too narrow for the count (a dense one): the rest near what was chosen, as a request's padding is.
        var first = chosen.ToArray();
        taken.UnionWith(first);
        var rest = first.Length == 0 ? Sample(lo, hi, count, taken) : [.. Near(first, count - first.Length, taken, 4, lastGroup)];
        taken.UnionWith(rest);
        var result = first.Concat(rest).ToArray();
        _random.Shuffle(result);
        return result;
    }

    /// <summary>
    /// Up to <paramref name="count"/> groups of [0, lastGroup] not yet <paramref name="taken"/>, each
    /// within <paramref name="reach"/> of one of <paramref name="around"/> drawn at random, the reach
    /// doubling where they are crowded; adds them to <paramref name="taken"/>.
    /// </summary>
    private List<long> Near(long[] around, long count, HashSet<long> taken, long reach, long lastGroup)
    {
        var found = new List<long>();
        for (var misses = 0; found.Count < count && reach <= 4 * (lastGroup + 1);)
        {
            var near = around[_random.Next(around.Length)] + _random.NextInt64(-reach, reach + 1);
            if (near >= 0 && near <= lastGroup && taken.Add(near))
            {
                found.Add(near);
                continue;
            }

            if (++misses > 16)
            {
                reach *= 2;
                misses = 0;
            }
        }

        found.AddRange(Sample(0, lastGroup, count - found.Count, taken));
        return found;
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

        /// <summary>The oldest and newest wanted group (a request's stream).</summary>
        public long WantedMin { get; init; }

        public long WantedMax { get; init; }
    }
}
