using System.Globalization;
using TrustedProxy.Storage;

namespace TrustedProxy.Testing.Privacy;

/// <summary>
/// The attacker's material: the writes of a cloud log, by time, as arrays. Built from nothing but
/// <see cref="CloudObservation"/>s, so a log written by the real server (CSV) serves as well as a
/// simulated one.
/// </summary>
public sealed class CloudLogView
{
    private CloudLogView(DateTimeOffset origin, double[] times, long[] lengths, string[] names)
    {
        Origin = origin;
        Times = times;
        Lengths = lengths;
        Names = names;
    }

    /// <summary>Time zero of <see cref="Times"/>: the first write.</summary>
    public DateTimeOffset Origin { get; }

    /// <summary>Seconds since <see cref="Origin"/> of every write, non-decreasing.</summary>
    public double[] Times { get; }

    public long[] Lengths { get; }

    public string[] Names { get; }

    public int Count => Times.Length;

    /// <summary>Seconds from the first to the last write.</summary>
    public double Span => Count == 0 ? 0 : Times[^1] - Times[0];

    public static CloudLogView FromObservations(IReadOnlyList<CloudObservation> observations)
    {
        var puts = observations.Where(o => o.Operation == "put").ToList();

        // A stable sort: writes at the same instant keep the order the cloud logged them in.
        var ordered = puts.Select((o, i) => (o, i)).OrderBy(p => p.o.At).ThenBy(p => p.i).Select(p => p.o).ToList();
        var origin = ordered.Count == 0 ? DateTimeOffset.UnixEpoch : ordered[0].At;
        return new CloudLogView(
            origin,
            ordered.Select(o => (o.At - origin).TotalSeconds).ToArray(),
            ordered.Select(o => o.Length).ToArray(),
            ordered.Select(o => o.Name).ToArray());
    }

    /// <summary>Seconds since <see cref="Origin"/> of an instant.</summary>
    public double Seconds(DateTimeOffset instant) => (instant - Origin).TotalSeconds;

    /// <summary>Index of the first write at or after <paramref name="seconds"/> (Count if none).</summary>
    public int FirstAtOrAfter(double seconds)
    {
        int lo = 0, hi = Times.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (Times[mid] < seconds)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    /// <summary>Index of the first write strictly after <paramref name="seconds"/> (Count if none).</summary>
    public int FirstAfter(double seconds)
    {
        int lo = 0, hi = Times.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (Times[mid] <= seconds)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    /// <summary>The leading 52 bits of a hex name as a number (the name-closeness score compares these).</summary>
    public static double NameValue(string name) =>
        name.Length >= 13 && long.TryParse(name.AsSpan(0, 13), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value) ? value : 0;

    /// <summary>Length of the common prefix of two names.</summary>
    public static int SharedPrefix(string a, string b) => a.AsSpan().CommonPrefixLength(b);
}

/// <summary>
/// The ground truth aligned with a <see cref="CloudLogView"/>, for scoring only: for every write,
/// whose it is. Attacks never read this to make a guess.
/// </summary>
public sealed class LogTruth
{
    private LogTruth(ObjectTruth?[] objects) => Objects = objects;

    /// <summary>The truth of each write of the view, by index; null for a dummy.</summary>
    public ObjectTruth?[] Objects { get; }

    public static LogTruth Align(CloudLogView view, IReadOnlyDictionary<string, ObjectTruth> objects) =>
        new(view.Names.Select(n => objects.GetValueOrDefault(n)).ToArray());

    public bool SamePatient(int i, int j) =>
        Objects[i] is { } a && Objects[j] is { } b && a.PatientId == b.PatientId;
}

/// <summary>
/// The delay from arrival to write of real blocks, as the attacker knows it (the schedule and its
/// parameters are public; here the empirical distribution of the run stands in for the analysis).
/// </summary>
public sealed class DelayDistribution
{
    private const int Bins = 400;
    private readonly double[] _sorted;
    private readonly double[] _density;
    private readonly double _binWidth;
    private readonly double _bodyEnd;
    private readonly double _tailDensity;

    public DelayDistribution(IEnumerable<double> delaySeconds)
    {
        _sorted = delaySeconds.Order().ToArray();
        if (_sorted.Length == 0)
        {
            throw new ArgumentException("no delays to learn from", nameof(delaySeconds));
        }

        // A fine histogram up to the 99.9th percentile and one flat bin for the tail up to the maximum.
        var body = Quantile(0.999);
        _binWidth = Math.Max(body / Bins, 1e-3);
        _bodyEnd = _binWidth * Bins;
        _density = new double[Bins];
        long tail = 0;
        foreach (var d in _sorted)
        {
            if (d < _bodyEnd)
            {
                _density[(int)(d / _binWidth)]++;
            }
            else
            {
                tail++;
            }
        }

        for (var b = 0; b < Bins; b++)
        {
            _density[b] /= _sorted.Length * _binWidth;
        }

        var tailWidth = Math.Max(_sorted[^1] - _bodyEnd, _binWidth);
        _tailDensity = tail / (_sorted.Length * tailWidth);
        Max = _sorted[^1];
    }

    public double Mean => _sorted.Average();

    public double Max { get; }

    public double Quantile(double p) => Estimators.PercentileOfSorted(_sorted, p * 100);

    /// <summary>Estimated density at a delay (per second); zero outside what was ever seen.</summary>
    public double Density(double delay) =>
        delay < 0 || delay > Math.Max(Max, _bodyEnd) ? 0 : delay < _bodyEnd ? _density[(int)(delay / _binWidth)] : _tailDensity;
}
