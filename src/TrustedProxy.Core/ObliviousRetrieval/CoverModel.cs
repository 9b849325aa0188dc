namespace TrustedProxy.ObliviousRetrieval;

/// <summary>
/// The shape of one read stream as the cloud can measure it, binned: how far back its newest group
/// is (age, in groups), its size class (groups = MinStreamGroups × 2^class) and how spread out it is
/// (the span from its oldest to its newest group over its size). Age and spread are binned at a
/// quarter of a power of two.
/// </summary>
public readonly record struct StreamShape(int AgeBin, int SizeClass, int SpreadBin)
{
    public const int AgeBins = 4 * 48;
    public const int SizeClasses = 24;
    public const int SpreadBins = 4 * 24;

    /// <summary>The bin of a count that starts at 0 (age: groups written since): floor(4 log2(x + 1)).</summary>
    public static int AgeBinOf(long age) => Math.Clamp((int)Math.Floor(4 * Math.Log2(Math.Max(0, age) + 1.0)), 0, AgeBins - 1);

    /// <summary>The bin of a ratio of at least 1: floor(4 log2(x)).</summary>
    public static int SpreadBinOf(double spread) => Math.Clamp((int)Math.Floor(4 * Math.Log2(Math.Max(1, spread))), 0, SpreadBins - 1);

    /// <summary>The smallest class whose size holds <paramref name="groups"/>.</summary>
    public static int SizeClassOf(long groups, int minStreamGroups)
    {
        var size = (long)minStreamGroups;
        var sizeClass = 0;
        while (size < groups && sizeClass < SizeClasses - 1)
        {
            size *= 2;
            sizeClass++;
        }

        return sizeClass;
    }

    public static long SizeOf(int sizeClass, int minStreamGroups) => (long)minStreamGroups << sizeClass;

    /// <summary>An age in this bin, log-uniform within it.</summary>
    public long DrawAge(Random random)
    {
        var age = Math.Max(0, (long)Math.Floor(Math.Pow(2, (AgeBin + random.NextDouble()) / 4)) - 1);

        // Flooring puts the draws below the bin's first whole age in the bin below (a third of them
        // at small ages); they are that first age. A bin with no whole age (1, 2, 3, 5, 7) keeps the age below.
        return AgeBinOf(age) < AgeBin && AgeBinOf(age + 1) == AgeBin ? age + 1 : age;
    }

    /// <summary>A spread in this bin, log-uniform within it.</summary>
    public double DrawSpread(Random random) => Math.Pow(2, (SpreadBin + random.NextDouble()) / 4);

    public string Key => $"{AgeBin},{SizeClass},{SpreadBin}";

    public static StreamShape Parse(string key)
    {
        var parts = key.Split(',');
        return new StreamShape(int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture));
    }
}

/// <summary>What the cover model has learned, as kept on disk (owner-only, under the data directory).</summary>
public sealed record CoverModelState
{
    /// <summary>Decayed counts of wanted streams by shape, as of <see cref="LearningAt"/>.</summary>
    public Dictionary<string, double> Learning { get; init; } = [];

    public DateTimeOffset LearningAt { get; init; }

    /// <summary>The counts cover draws from until the next snapshot.</summary>
    public Dictionary<string, double> Snapshot { get; init; } = [];

    public DateTimeOffset SnapshotAt { get; init; }

    /// <summary>Decayed weights, by size class, of where in their window wanted streams' groups lie (<see cref="CoverModel.ProfileBins"/> bins, oldest first).</summary>
    public Dictionary<string, double[]> Profiles { get; init; } = [];

    public Dictionary<string, double[]> ProfileSnapshot { get; init; } = [];

    /// <summary>This state with what it learned as the snapshot cover draws from, taken at <paramref name="at"/> (the privacy harness's "after weeks at this load").</summary>
    public CoverModelState Settled(DateTimeOffset at) => this with { Snapshot = Learning, ProfileSnapshot = Profiles, SnapshotAt = at, LearningAt = at };
}

/// <summary>The cover model's parameters, from <see cref="ObliviousRetrievalOptions"/>.</summary>
/// <param name="HalfLife">Learned counts halve over this much time (of the clock, not of requests).</param>
/// <param name="SnapshotPeriod">Cover draws from a snapshot renewed this often.</param>
/// <param name="CoverPerWanted">Cover streams per wanted stream.</param>
/// <param name="FloorGroupsPerSecond">The least cover, in groups read a second, when nobody asks.</param>
/// <param name="MinStreamGroups">The smallest size class.</param>
/// <param name="Prior">The declared load's shape: what the model knows on its first day.</param>
/// <param name="PriorStreamsPerSecond">The declared load's rate, in streams a second.</param>
/// <param name="Learn">Whether wanted streams teach the model (off only in the privacy harness's broken control).</param>
/// <param name="StreamFloorGroups">The least a stream reads, in groups (a size class, or 0 for none).</param>
public sealed record CoverModelSettings(
    TimeSpan HalfLife, TimeSpan SnapshotPeriod, double CoverPerWanted, double FloorGroupsPerSecond, int MinStreamGroups,
    IReadOnlyDictionary<StreamShape, double> Prior, double PriorStreamsPerSecond, bool Learn = true, long StreamFloorGroups = 0)
{
    /// <summary>The stream floor in groups for a floor in megabytes: the size class that holds it (0 for none).</summary>
    public static long FloorGroupsOf(double megabytes, double groupBytes, int minStreamGroups) =>
        megabytes <= 0 ? 0 : StreamShape.SizeOf(StreamShape.SizeClassOf((long)Math.Ceiling(megabytes * 1e6 / groupBytes), minStreamGroups), minStreamGroups);

    /// <summary>
    /// The settings the options give. The declared load becomes the prior: streams of the declared
    /// size, their ages spread evenly over the bins up to about a million groups, a spread of 8 to
    /// 16 (about what the upload pool's mixing leaves of a study written at once).
    /// </summary>
    public static CoverModelSettings From(ObliviousRetrievalOptions options, int blockSizeBytes)
    {
        var groupBytes = (double)options.GroupSize * blockSizeBytes;
        var declaredGroups = (long)Math.Ceiling(options.DeclaredRetrievalMegabytes * 1e6 / groupBytes);
        var sizeClass = StreamShape.SizeClassOf(declaredGroups, options.MinStreamGroups);
        var ageBins = StreamShape.AgeBinOf(1 << 20);
        var prior = Enumerable.Range(0, ageBins + 1).ToDictionary(a => new StreamShape(a, sizeClass, StreamShape.SpreadBinOf(8)), _ => 1.0);
        return new CoverModelSettings(
            TimeSpan.FromDays(options.CoverModelHalfLifeDays),
            TimeSpan.FromHours(options.CoverModelSnapshotHours),
            options.CoverPerWanted,
            options.IdleFloorGigabytesPerDay * 1e9 / groupBytes / 86_400,
            options.MinStreamGroups,
            prior,
            options.DeclaredRetrievalsPerDay / 86_400,
            StreamFloorGroups: FloorGroupsOf(options.StreamFloorMegabytes ?? options.DeclaredRetrievalMegabytes, groupBytes, options.MinStreamGroups));
    }
}

/// <summary>
/// What cover read streams look like and how often they start, learned slowly from the wanted ones.
/// Wanted streams are counted by <see cref="StreamShape"/> with weights that halve every
/// <see cref="CoverModelSettings.HalfLife"/>; cover draws only from a snapshot of those counts taken
/// once per <see cref="CoverModelSettings.SnapshotPeriod"/>. So no request changes the cover of the
/// day it was made, and in the long run cover streams have the wanted streams' ages, sizes and
/// spreads. The rate of cover streams is the learned rate of wanted ones (counts over the decay's
/// mean life) times <see cref="CoverModelSettings.CoverPerWanted"/>, and never below the idle floor.
/// Pure and clock-free: the server and the privacy harness drive it alike. Not thread-safe.
/// </summary>
public sealed class CoverModel
{
    /// <summary>Bins of the within-window profile.</summary>
    public const int ProfileBins = 16;

    private static readonly double[] UniformProfile = Enumerable.Repeat(1.0, ProfileBins).ToArray();

    // Everything here is bounded by the bins, never by requests: at most AgeBins × SizeClasses ×
    // SpreadBins shape counts (in practice a few hundred), and SizeClasses profiles of ProfileBins
    // weights. Copying them (a snapshot, the saved state) costs kilobytes.
    private readonly CoverModelSettings _settings;
    private Dictionary<int, double[]> _profiles = [];
    private Dictionary<int, double[]> _profileSnapshot = [];
    private Dictionary<StreamShape, double> _learning;
    private DateTimeOffset _learningAt;
    private Dictionary<StreamShape, double> _snapshot;
    private StreamShape[] _shapes = [];
    private double[] _cumulative = [];
    private double _snapshotWeight;

    public CoverModel(CoverModelSettings settings, DateTimeOffset now, CoverModelState? state = null)
    {
        _settings = settings;
        if (state is { Learning.Count: > 0 })
        {
            _learning = state.Learning.ToDictionary(p => StreamShape.Parse(p.Key), p => p.Value);
            _learningAt = state.LearningAt;
            _snapshot = state.Snapshot.ToDictionary(p => StreamShape.Parse(p.Key), p => p.Value);
            SnapshotAt = state.SnapshotAt;
            _profiles = state.Profiles.Where(p => p.Value.Length == ProfileBins).ToDictionary(p => int.Parse(p.Key, System.Globalization.CultureInfo.InvariantCulture), p => p.Value.ToArray());
            _profileSnapshot = state.ProfileSnapshot.Where(p => p.Value.Length == ProfileBins).ToDictionary(p => int.Parse(p.Key, System.Globalization.CultureInfo.InvariantCulture), p => p.Value.ToArray());
        }
        else
        {
            // The declared load, weighted as if it had been seen at its rate for ever: it fades as
            // the site's own requests are learned.
            var total = settings.PriorStreamsPerSecond * MeanLifeSeconds;
            var sum = settings.Prior.Values.Sum();
            _learning = settings.Prior.ToDictionary(p => p.Key, p => sum > 0 ? p.Value / sum * total : 0);
            _learningAt = now;
            _snapshot = new(_learning);
            SnapshotAt = now;
        }

        Rebuild();
    }

    /// <summary>When the snapshot cover draws from was taken.</summary>
    public DateTimeOffset SnapshotAt { get; private set; }

    private double MeanLifeSeconds => _settings.HalfLife.TotalSeconds / Math.Log(2);

    /// <summary>
    /// A wanted stream of this shape started; <paramref name="positions"/> are where its groups lie
    /// in its window, from 0 (oldest) to 1 (newest). A study written at once is dense where most of
    /// it was released and thin towards its last stragglers; cover streams copy that profile.
    /// </summary>
    public void Observe(StreamShape shape, IReadOnlyCollection<double> positions, DateTimeOffset at)
    {
        if (!_settings.Learn)
        {
            return;
        }

        Decay(at);
        _learning[shape] = _learning.GetValueOrDefault(shape) + 1;
        if (positions.Count > 0)
        {
            if (!_profiles.TryGetValue(shape.SizeClass, out var profile))
            {
                _profiles[shape.SizeClass] = profile = new double[ProfileBins];
            }

            foreach (var x in positions)
            {
                profile[Math.Clamp((int)(x * ProfileBins), 0, ProfileBins - 1)] += 1.0 / positions.Count;
            }
        }
    }

    /// <summary>Where in its window a cover stream of this class puts its groups: weights by bin, oldest first (uniform until learned).</summary>
    public IReadOnlyList<double> Profile(int sizeClass) =>
        _profileSnapshot.TryGetValue(sizeClass, out var profile) && profile.Sum() > 0 ? profile : UniformProfile;

    /// <summary>Cover streams a second from now until the next snapshot.</summary>
    public double CoverStreamsPerSecond(DateTimeOffset at)
    {
        Refresh(at);
        var learned = _snapshotWeight / MeanLifeSeconds * _settings.CoverPerWanted;
        var meanGroups = MeanStreamGroups;
        var floor = meanGroups > 0 ? _settings.FloorGroupsPerSecond / meanGroups : 0;
        return Math.Max(learned, floor);
    }

    /// <summary>The least a stream reads, in groups (0: no floor).</summary>
    public long StreamFloorGroups => _settings.StreamFloorGroups;

    /// <summary>The mean size of a cover stream, in groups (the floor included).</summary>
    public double MeanStreamGroups => _snapshotWeight <= 0
        ? Math.Max(_settings.MinStreamGroups, _settings.StreamFloorGroups)
        : _snapshot.Sum(p => p.Value * Math.Max(StreamShape.SizeOf(p.Key.SizeClass, _settings.MinStreamGroups), _settings.StreamFloorGroups)) / _snapshotWeight;

    /// <summary>A cover stream's shape, drawn from the snapshot.</summary>
    public StreamShape Draw(Random random, DateTimeOffset at)
    {
        Refresh(at);
        if (_shapes.Length == 0)
        {
            return new StreamShape(StreamShape.AgeBinOf(random.NextInt64(1 << 20)), 0, 0);
        }

        var i = Array.BinarySearch(_cumulative, random.NextDouble() * _cumulative[^1]);
        i = i < 0 ? ~i : i;
        return _shapes[Math.Min(i, _shapes.Length - 1)];
    }

    public CoverModelState State() => new()
    {
        Learning = _learning.ToDictionary(p => p.Key.Key, p => p.Value),
        LearningAt = _learningAt,
        Snapshot = _snapshot.ToDictionary(p => p.Key.Key, p => p.Value),
        SnapshotAt = SnapshotAt,
        Profiles = _profiles.ToDictionary(p => p.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), p => p.Value.ToArray()),
        ProfileSnapshot = _profileSnapshot.ToDictionary(p => p.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), p => p.Value.ToArray()),
    };

    private void Decay(DateTimeOffset at)
    {
        if (at <= _learningAt)
        {
            return;
        }

        var factor = Math.Pow(0.5, (at - _learningAt) / _settings.HalfLife);
        foreach (var key in _learning.Keys.ToList())
        {
            var weight = _learning[key] * factor;
            if (weight < 1e-6)
            {
                _learning.Remove(key);
            }
            else
            {
                _learning[key] = weight;
            }
        }

        foreach (var profile in _profiles.Values)
        {
            for (var i = 0; i < profile.Length; i++)
            {
                profile[i] *= factor;
            }
        }

        _learningAt = at;
    }

    private void Refresh(DateTimeOffset at)
    {
        if (at - SnapshotAt < _settings.SnapshotPeriod)
        {
            return;
        }

        Decay(at);
        _snapshot = new Dictionary<StreamShape, double>(_learning);
        _profileSnapshot = _profiles.ToDictionary(p => p.Key, p => p.Value.ToArray());
        SnapshotAt = at;
        Rebuild();
    }

    private void Rebuild()
    {
        var cumulative = 0.0;
        var table = _snapshot.Where(p => p.Value > 0).OrderBy(p => p.Key.Key, StringComparer.Ordinal).ToArray();
        _shapes = table.Select(p => p.Key).ToArray();
        _cumulative = table.Select(p => cumulative += p.Value).ToArray();
        _snapshotWeight = cumulative;
    }
}
