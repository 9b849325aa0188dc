using System.Diagnostics;
using System.Globalization;

namespace TrustedProxy.Testing.Privacy.Wire;

/// <summary>
/// One written object as the cloud saw it on the wire: every request on its name, in order, up to
/// and including the write (the PUT it accepted, or the last one it refused), and what came later.
/// </summary>
public sealed record WireObject(string Name, IReadOnlyList<TappedRequest> UpToWrite, IReadOnlyList<TappedRequest> Later)
{
    public TappedRequest Write => UpToWrite[^1];

    /// <summary>Whether the object is still there at the end of the log (never deleted).</summary>
    public bool Survives => !Later.Any(r => r.Method == "DELETE");

    /// <summary>The objects written in a wire log, by name. Built from the requests alone.</summary>
    public static IReadOnlyList<WireObject> FromRequests(IReadOnlyList<TappedRequest> requests)
    {
        var objects = new List<WireObject>();
        foreach (var group in requests.Where(r => r.Key is not null).GroupBy(r => r.Key!))
        {
            var list = group.OrderBy(r => r.Sequence).ToList();

            // The write is the first PUT the cloud accepted, or (a write it refused) its last PUT.
            var write = list.FindIndex(r => r.Method == "PUT" && r.Status is >= 200 and < 300);
            if (write < 0)
            {
                write = list.FindLastIndex(r => r.Method == "PUT");
            }

            if (write >= 0)
            {
                objects.Add(new WireObject(group.Key, list[..(write + 1)], list[(write + 1)..]));
            }
        }

        return objects;
    }
}

/// <summary>
/// How well one observable tells real writes from cover. <see cref="Auc"/> is the Mann–Whitney AUC of
/// the classifier's score for real (positive) against cover (negative) objects, ties counted half;
/// chance is 0.5. A score's direction is the attacker's guess, and a cloud that finds two clusters can
/// tell which is real from one known upload, so <see cref="Separation"/> = max(AUC, 1 − AUC) is what counts.
/// </summary>
public sealed record WireClassifierResult(string Name, double Auc, int Real, int Cover, string Detail)
{
    public double Separation => Math.Max(Auc, 1 - Auc);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Name}: AUC {Auc:F3} ({Real} real, {Cover} cover){(Detail.Length > 0 ? "; " + Detail : "")}");
}

/// <summary>
/// The attacker on the wire: scores for every written object from what the cloud received (headers,
/// body bytes, sizes, request sequences, gaps), one classifier per observable. Ground truth (the
/// index's kinds) is read only in <see cref="Score"/>, to compute the AUC of a score that was formed
/// without it.
/// </summary>
public static class WireClassifiers
{
    /// <summary>Header values that differ per request by construction and carry nothing else: time, signature, the content hash, the object's name.</summary>
    public static readonly IReadOnlySet<string> ExcludedHeaderValues = new HashSet<string>(StringComparer.Ordinal)
    {
        "date", "x-amz-date", "authorization", "x-amz-content-sha256", "content-md5", "x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-checksum-sha256", "x-amz-checksum-sha1", "x-amz-checksum-crc64nvme",
    };

    /// <summary>A classifier: a name and a score per object (higher: the attacker's "more likely real").</summary>
    public sealed record Classifier(string Name, Func<IReadOnlyList<WireObject>, double[]> Scores);

    /// <summary>Scores every classifier against the truth; for categorical observables (one per header) the worst one is reported.</summary>
    public static IReadOnlyList<WireClassifierResult> All(IReadOnlyList<WireObject> objects, IReadOnlyDictionary<string, string> kinds)
    {
        var results = new List<WireClassifierResult>
        {
            Score("payload hash mismatch", objects, kinds, PayloadHashMismatch(objects)),
            Score("header name set", objects, kinds, Categorical(objects.Select(o => string.Join(",", o.Write.Headers.Select(h => h.Key).Distinct().Order(StringComparer.Ordinal))).ToList())),
            WorstHeaderValue(objects, kinds),
            Score("shared 4-byte prefix (>1 % of objects)", objects, kinds, SharedPrefix(objects)),
            Score("chi-square of the first 64 bytes (16 bins)", objects, kinds, objects.Select(o => FirstBytesChiSquare(o.Write.First64)).ToArray()),
            WorstOffset(objects, kinds),
            Score("chi-square of the whole body (256 bins)", objects, kinds, objects.Select(o => BodyChiSquare(o.Write.ByteCounts)).ToArray()),
            Score("object size", objects, kinds, objects.Select(o => (double)o.Write.BodyLength).ToArray()),
            Score("request sequence up to the write", objects, kinds, Categorical(objects.Select(o => string.Join(",", o.UpToWrite.Select(r => r.Method))).ToList())),
            Score("HEADs before the write", objects, kinds, objects.Select(o => (double)o.UpToWrite.Count(r => r.Method == "HEAD")).ToArray()),
            Score("gap from first request to the write (wall clock)", objects, kinds, objects.Select(Gap).ToArray()),
        };
        return results;
    }

    /// <summary>Survival: an object never deleted by the end of the log scores 1.</summary>
    public static WireClassifierResult Survival(IReadOnlyList<WireObject> objects, IReadOnlyDictionary<string, string> kinds) =>
        Score("survives to the end of the log", objects, kinds, objects.Select(o => o.Survives ? 1.0 : 0.0).ToArray());

    /// <summary>AUC of real against cover; objects the index never named (none expected) are left out.</summary>
    public static WireClassifierResult Score(string name, IReadOnlyList<WireObject> objects, IReadOnlyDictionary<string, string> kinds, double[] scores, string detail = "")
    {
        var real = new List<double>();
        var cover = new List<double>();
        for (var i = 0; i < objects.Count; i++)
        {
            switch (kinds.GetValueOrDefault(objects[i].Name))
            {
                case "Real":
                    real.Add(scores[i]);
                    break;
                case "Dummy" or "Retired":
                    cover.Add(scores[i]);
                    break;
            }
        }

        return new WireClassifierResult(name, real.Count == 0 || cover.Count == 0 ? double.NaN : Estimators.Auc(real, cover), real.Count, cover.Count, detail);
    }

    /// <summary>(a) The body the cloud received is not the one whose hash was signed.</summary>
    public static double[] PayloadHashMismatch(IReadOnlyList<WireObject> objects) =>
        objects.Select(o => o.Write.Header("x-amz-content-sha256") is { Length: 64 } claimed && !string.Equals(claimed, o.Write.BodySha256, StringComparison.OrdinalIgnoreCase) ? 1.0 : 0.0).ToArray();

    /// <summary>
    /// A categorical observable as a score: each distinct value's rank in a fixed (ordinal) order.
    /// Two clusters separate completely; values drawn at random per request (invocation ids) give a
    /// random order, that is chance.
    /// </summary>
    public static double[] Categorical(IReadOnlyList<string> values)
    {
        var rank = values.Distinct().Order(StringComparer.Ordinal).Select((v, i) => (v, i)).ToDictionary(p => p.v, p => (double)p.i);
        return values.Select(v => rank[v]).ToArray();
    }

    /// <summary>(b) Each header's value (absent counts as a value), excluding time, signature, content hash and name; the most separating header is reported.</summary>
    public static WireClassifierResult WorstHeaderValue(IReadOnlyList<WireObject> objects, IReadOnlyDictionary<string, string> kinds) =>
        HeaderValues(objects, kinds).MaxBy(r => r.Separation) ?? new WireClassifierResult("header values (worst header)", double.NaN, 0, 0, "no headers");

    /// <summary>(b) One result per header name seen on any write (the header's name is the detail).</summary>
    public static IReadOnlyList<WireClassifierResult> HeaderValues(IReadOnlyList<WireObject> objects, IReadOnlyDictionary<string, string> kinds)
    {
        var names = objects.SelectMany(o => o.Write.Headers.Select(h => h.Key)).Distinct().Where(n => !ExcludedHeaderValues.Contains(n)).Order(StringComparer.Ordinal).ToList();
        return names.Select(name =>
        {
            var values = objects.Select(o => string.Join("\n", o.Write.Headers.Where(h => h.Key == name).Select(h => h.Value)) is { Length: > 0 } v ? v : "<absent>").ToList();
            return Score("header values (worst header)", objects, kinds, Categorical(values), name);
        }).ToList();
    }

    /// <summary>(c) The object starts with a 4-byte prefix that more than 1 % of the objects share: a magic number or a version field.</summary>
    public static double[] SharedPrefix(IReadOnlyList<WireObject> objects)
    {
        var prefixes = objects.Select(o => o.Write.First64.Length >= 4 ? Convert.ToHexString(o.Write.First64, 0, 4) : "").ToList();
        var counts = prefixes.GroupBy(p => p).ToDictionary(g => g.Key, g => g.Count());
        return prefixes.Select(p => counts[p] > objects.Count / 100.0 ? 1.0 : 0.0).ToArray();
    }

    /// <summary>(c) Chi-square of the first 64 bytes' high nibbles against uniform (16 bins, 4 expected per bin): fixed fields and small numbers stand out.</summary>
    public static double FirstBytesChiSquare(byte[] first)
    {
        if (first.Length == 0)
        {
            return 0;
        }

        var bins = new int[16];
        foreach (var b in first)
        {
            bins[b >> 4]++;
        }

        var expected = first.Length / 16.0;
        return bins.Sum(c => (c - expected) * (c - expected) / expected);
    }

    /// <summary>(c) Every offset 0..63 on its own: the byte value there as the score; the most separating offset is reported.</summary>
    public static WireClassifierResult WorstOffset(IReadOnlyList<WireObject> objects, IReadOnlyDictionary<string, string> kinds)
    {
        WireClassifierResult? worst = null;
        for (var offset = 0; offset < 64; offset++)
        {
            var result = Score("byte value at one offset (worst of 0..63)", objects, kinds, objects.Select(o => o.Write.First64.Length > offset ? o.Write.First64[offset] : -1.0).ToArray(), $"offset {offset}");
            if (worst is null || result.Separation > worst.Separation)
            {
                worst = result;
            }
        }

        return worst!;
    }

    /// <summary>(c) Chi-square of the whole body's byte counts against uniform (255 degrees of freedom): ciphertext and CSPRNG output both sit near 255.</summary>
    public static double BodyChiSquare(long[] counts)
    {
        var total = counts.Sum();
        if (total == 0)
        {
            return 0;
        }

        var expected = total / 256.0;
        return counts.Sum(c => (c - expected) * (c - expected) / expected);
    }

    /// <summary>(f) Wall-clock time from the first request on the name to the write (0 when the write came alone).</summary>
    public static double Gap(WireObject o) => Stopwatch.GetElapsedTime(o.UpToWrite[0].WallTimestamp, o.Write.WallTimestamp).TotalMilliseconds;
}
