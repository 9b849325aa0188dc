using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.UploadCache;

/// <summary>
/// The randomized upload cache between ingestion and the backend, and the size padding of what it
/// releases. Section TrustedProxy:UploadCache. The defaults are the configuration measured in
/// docs/privacy.md; change them with that document at hand. The server does not run with the
/// record's <see cref="SlotsPerSecond"/> and <see cref="PoolThreshold"/> unless configuration sets
/// them: it derives both from the declared write load (<see cref="SlotRate.Apply"/>).
/// </summary>
public sealed record UploadCacheOptions
{
    /// <summary>The most slots a second any configuration or declaration may ask for.</summary>
    public const double MaxSlotsPerSecond = 100_000;

    /// <summary>
    /// On: an upload is acknowledged (202) once durably cached on local disk and reaches the backend
    /// later, on the schedule. Off: write-through, acknowledged once the backend has every block
    /// (timing and order then follow the uploads; for tests and comparison).
    /// </summary>
    public bool Enabled { get; init; } = true;

    /// <summary>How ciphertext is cut and padded into objects: <c>fixed-blocks</c>, <c>padme</c>, <c>power-of-two</c> or <c>none</c>.</summary>
    [Required]
    public string Padding { get; init; } = FixedBlockPadding.SchemeName;

    /// <summary>The size of every object under <c>fixed-blocks</c> (and of dummies under it).</summary>
    [Range(4096, 64 * 1024 * 1024)]
    public int BlockSizeBytes { get; init; } = 128 * 1024;

    /// <summary>When blocks leave the cache: <c>constant-rate</c> (input-independent; the default) or <c>exponential-hold</c>.</summary>
    [Required]
    public string Schedule { get; init; } = ConstantRateSchedule.ScheduleName;

    /// <summary>
    /// <c>constant-rate</c>: mean writes per second, real or dummy, as a Poisson process. 4 is the
    /// rate measured in docs/privacy.md at its documented load (about 10 GB of uploads a day); the
    /// server uses it only when configuration sets it, and otherwise derives the rate from
    /// <see cref="DeclaredUploadsPerDay"/> and <see cref="DeclaredUploadMegabytes"/>.
    /// </summary>
    [Range(1e-6, MaxSlotsPerSecond)]
    public double SlotsPerSecond { get; init; } = 4;

    /// <summary>
    /// The write load the site declares (<c>tproxy init --uploads-per-day</c>): uploads (studies or
    /// series, and records re-written after a cloud read) a day. The default, 10 of 50 MB, is a
    /// laptop's: about 1.5 GB of slot writes a day.
    /// </summary>
    [Range(0, 10_000_000)]
    public double DeclaredUploadsPerDay { get; init; } = 10;

    /// <summary>The size of a declared upload in MB (10⁶ bytes).</summary>
    [Range(0.01, 1_000_000)]
    public double DeclaredUploadMegabytes { get; init; } = 50;

    /// <summary>
    /// Pool threshold k. <c>constant-rate</c>: a slot carries a real block with probability
    /// n/k while n &lt; k blocks wait, so a block waits k/slots-per-second on average at low load.
    /// <c>exponential-hold</c>: due blocks leave only while at least k wait (0: no threshold).
    /// Blocks past <see cref="MaxHoldSeconds"/> leave regardless. When the server derives the rate,
    /// it derives k with it (k = μ × 2 h) unless configuration sets k.
    /// </summary>
    [Range(0, int.MaxValue)]
    public int PoolThreshold { get; init; } = 28_800;

    /// <summary><c>exponential-hold</c>: mean of the exponential hold time drawn for each block.</summary>
    [Range(0, 365 * 86400.0)]
    public double MeanHoldSeconds { get; init; } = 7200;

    /// <summary><c>exponential-hold</c>: the shortest hold.</summary>
    [Range(0, 365 * 86400.0)]
    public double MinHoldSeconds { get; init; }

    /// <summary>The longest any block waits (both schedules): past it a block takes the next opportunity.</summary>
    [Range(0, 365 * 86400.0)]
    public double MaxHoldSeconds { get; init; } = 86400;

    /// <summary><c>exponential-hold</c>: dummy objects per second, as a Poisson process (0: none).</summary>
    [Range(0, 100_000)]
    public double CoverPerSecond { get; init; }

    /// <summary>Mean of the exponential delay before a deleted record's blocks are removed from the backend.</summary>
    [Range(0, 365 * 86400.0)]
    public double MeanDeleteDelaySeconds { get; init; } = 7200;

    /// <summary>
    /// Mean lifetime of a dummy (or retired) object in the backend before it is deleted (0, the
    /// default: cover is kept for good). Real blocks never expire, so any other value lets a cloud
    /// that keeps its log tell cover from real by which objects survive (docs/privacy.md, "Lifetimes").
    /// </summary>
    [Range(0, 10 * 365 * 86400.0)]
    public double MeanDummyLifetimeSeconds { get; init; }

    /// <summary>
    /// A record deleted by a hospital: false (the default), its row and wrapped data key are
    /// destroyed and its objects stay in the cloud as decoys, unreadable by anyone (crypto-erasure;
    /// the cloud sees no delete, which would mark them as once real); true, its objects are also
    /// deleted from the backend at random times (the cloud then learns they were real).
    /// </summary>
    public bool EraseDeletedObjects { get; init; }

    /// <summary>How long after the backend last refused a write (for good) the alarm stays raised.</summary>
    [Range(1, 30 * 86400.0)]
    public double RefusalAlarmSeconds { get; init; } = 3600;

    /// <summary>The longest a refused real block waits in quarantine before its next try (randomized exponential backoff up to this).</summary>
    [Range(0.001, 30 * 86400.0)]
    public double QuarantineMaxSeconds { get; init; } = 3600;

    /// <summary>Alarm (unhealthy on /healthz, a warning in the log) when the oldest waiting block is older than this.</summary>
    [Range(1, 10 * 365 * 86400.0)]
    public double AlarmAfterSeconds { get; init; } = 2 * 86400;

    /// <summary>First retry delay after a backend error; doubles per failure up to <see cref="RetryMaxSeconds"/>, with full jitter.</summary>
    [Range(0.001, 3600)]
    public double RetryBaseSeconds { get; init; } = 1;

    /// <summary>The longest wait between retries while the backend is down.</summary>
    [Range(0.001, 86400)]
    public double RetryMaxSeconds { get; init; } = 120;

    public TimeSpan MaxHold => TimeSpan.FromSeconds(MaxHoldSeconds);

    /// <summary>Errors no attribute can see: unknown names, bounds that contradict each other.</summary>
    public IEnumerable<string> Validate()
    {
        const string section = "TrustedProxy:UploadCache";
        if (!PaddingSchemes.Names.Contains(Padding))
        {
            yield return $"{section}:Padding: unknown padding scheme '{Padding}'; choose one of: {string.Join(", ", PaddingSchemes.Names)}";
        }

        if (!ReleaseSchedules.Names.Contains(Schedule))
        {
            yield return $"{section}:Schedule: unknown schedule '{Schedule}'; choose one of: {string.Join(", ", ReleaseSchedules.Names)}";
        }

        if (MinHoldSeconds > MeanHoldSeconds || MeanHoldSeconds > MaxHoldSeconds)
        {
            yield return $"{section}: hold times must satisfy MinHoldSeconds <= MeanHoldSeconds <= MaxHoldSeconds";
        }

        if (AlarmAfterSeconds <= MaxHoldSeconds)
        {
            yield return $"{section}:AlarmAfterSeconds must exceed MaxHoldSeconds (blocks may legitimately wait that long)";
        }

        if (RetryBaseSeconds > RetryMaxSeconds)
        {
            yield return $"{section}:RetryBaseSeconds must not exceed RetryMaxSeconds";
        }
    }
}
