using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.ObliviousRetrieval;

/// <summary>Cloud-side oblivious retrieval. Section TrustedProxy:ObliviousRetrieval.</summary>
public sealed record ObliviousRetrievalOptions
{
    public const string Epochs = "epochs";
    public const string Immediate = "immediate";

    /// <summary>
    /// N: objects per retrieval group. Every object released to the cloud joins a group of N
    /// consecutive releases (real blocks of different records and dummies, in the schedule's random
    /// order); reading any member reads the whole group, in random order. The read schedule counts
    /// in groups, so with N = 1 (the default) a group number is an object's place in the write order.
    /// N above 1 hides each wanted object among N at N times the cost; the epoch schedule's cover
    /// streams already hide which objects were wanted, so it is off by default.
    /// </summary>
    [Range(1, 4096)]
    public int GroupSize { get; init; } = 1;

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
    /// A request served from the proxy (its records still in the upload cache, or waiting to be
    /// relocated) still starts a stream at the next tick, of the size class its blocks would have
    /// needed, shaped as cover is; a request served partly from the cloud pads its stream for the
    /// local part too. Off, an insider who knows when a request was made sees that no stream
    /// followed it, so that its records were local (recent uploads, records just read), and two
    /// requests for one record share that (docs/privacy.md, "Retrieval", volume).
    /// </summary>
    public bool StreamForLocalReads { get; init; } = true;

    /// <summary>
    /// When groups are read. <c>epochs</c>: reads happen at the ticks of a fixed clock
    /// (<see cref="EpochSeconds"/>, random phase); in each epoch every active read stream (a
    /// request's groups, padded to a size class, or a cover stream drawn from the learned shape of
    /// past requests) reads its next <see cref="GroupsPerEpoch"/> groups; docs/oblivious-retrieval.md.
    /// <c>immediate</c>: a request reads its groups at once; fast, but its time, size and objects show.
    /// </summary>
    [AllowedValues(Epochs, Immediate)]
    public string Schedule { get; init; } = Epochs;

    /// <summary>The read clock's period: every read happens at one of its ticks.</summary>
    [Range(0.05, 3600)]
    public double EpochSeconds { get; init; } = 1;

    /// <summary>
    /// Groups each active stream reads per epoch: 64 objects of 128 KiB a second, 8.4 MB/s, so that
    /// a 2,000-instance CT study (10,000 blocks, padded to 16,384) comes in about four minutes.
    /// </summary>
    [Range(1, 100_000)]
    public int GroupsPerEpoch { get; init; } = 64;

    /// <summary>Streams read at once, requests and cover alike; a request beyond it waits for a stream to end.</summary>
    [Range(1, 1024)]
    public int MaxStreams { get; init; } = 4;

    /// <summary>The smallest size class: a stream reads this many groups, or this times a power of two.</summary>
    [Range(1, 1_000_000)]
    public int MinStreamGroups { get; init; } = 8;

    /// <summary>Read objects in flight at once within an epoch.</summary>
    [Range(1, 256)]
    public int ReadConcurrency { get; init; } = 8;

    /// <summary>
    /// The declared load, which the cover model starts from before it has learned the site's own:
    /// retrievals (studies or series asked for) a day. 200 studies of 500 MB is the documented load (docs/privacy.md).
    /// </summary>
    [Range(0, 1_000_000)]
    public double DeclaredRetrievalsPerDay { get; init; } = 200;

    /// <summary>The declared size of a retrieval, in megabytes (10^6 bytes).</summary>
    [Range(0.01, 1_000_000)]
    public double DeclaredRetrievalMegabytes { get; init; } = 500;

    /// <summary>
    /// The least a stream reads, in megabytes (10^6 bytes), rounded up to a size class: a request
    /// for less (one instance, a small series) reads its own groups first and then cover groups
    /// drawn from the model up to it, as every cover stream does. So every stream up to that size
    /// reads the same number of objects, and an insider who knows when two requests were made cannot
    /// link them by the volume that followed (docs/oblivious-retrieval.md, "Volume"). Null: the
    /// declared retrieval size (<see cref="DeclaredRetrievalMegabytes"/>), so that at the declared
    /// load it costs nothing; 0: no floor (streams are their size class).
    /// </summary>
    [Range(0, 1_000_000)]
    public double? StreamFloorMegabytes { get; init; }

    /// <summary>Cover streams per wanted stream, in the long run (cover reads cost about this times the wanted reads, on top of them).</summary>
    [Range(0.1, 100)]
    public double CoverPerWanted { get; init; } = 1;

    /// <summary>The least cover read a day when nobody asks, in gigabytes (10^9 bytes): the idle floor of the read bill.</summary>
    [Range(0, 100_000)]
    public double IdleFloorGigabytesPerDay { get; init; } = 5;

    /// <summary>The learned shape and rate of requests forget with this half-life, in days.</summary>
    [Range(0.01, 365)]
    public double CoverModelHalfLifeDays { get; init; } = 7;

    /// <summary>Cover draws from a snapshot of what was learned, renewed this often, in hours: no request, nor a day's, changes today's cover.</summary>
    [Range(0.001, 30 * 24)]
    public double CoverModelSnapshotHours { get; init; } = 24;

    /// <summary>Where the learned model is kept (the server sets it under the data directory); null: not kept.</summary>
    internal string? CoverModelFile { get; init; }

    /// <summary>
    /// Bytes read ahead for retrievals (a study's stream runs at its own pace, whatever the client's)
    /// kept in memory, across all of them; beyond it they wait in a scratch file on disk, still
    /// encrypted. A slow client of a large study therefore costs disk, not memory.
    /// </summary>
    [Range(0, 1L << 40)]
    public long ReadAheadMemoryBytes { get; init; } = 64L << 20;

    /// <summary>Where read-ahead beyond <see cref="ReadAheadMemoryBytes"/> is kept (the server sets the staging area's scratch directory); null: kept in memory.</summary>
    internal string? ReadAheadDirectory { get; init; }
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
