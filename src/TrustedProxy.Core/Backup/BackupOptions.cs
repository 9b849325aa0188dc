using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.Backup;

/// <summary>Configuration section <c>TrustedProxy:Backup</c> (docs/backup-and-recovery.md).</summary>
public sealed record BackupOptions
{
    /// <summary>
    /// Ship generations of the proxy's state, and increments between them, in the upload cache's
    /// dummy slots. On by default wherever the upload cache can carry it (enabled, fixed-block
    /// padding, dummies kept for good: the defaults); where it cannot and this is not set, the
    /// backup is off and start-up says why; set to true there, start-up refuses.
    /// </summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Why the backup is off though not switched off: set at start-up by <see cref="BackupServiceCollectionExtensions.Resolve"/>, never bound from configuration (no public setter).</summary>
    public string? OffBecause { get; internal init; }

    /// <summary>
    /// How long after a generation's snapshot the next one is taken (once the previous is complete). A day:
    /// a generation re-ships every waiting upload's cache file and the whole index and takes dummy slots
    /// for hours, while increments carry the changes in between (docs/benchmarks.md, "Backup recovery point").
    /// </summary>
    [Range(1, 31 * 24 * 3600)]
    public int IntervalSeconds { get; init; } = 86400;

    /// <summary>
    /// How often the state is checked for changes to ship as an increment on the newest complete
    /// generation (a new waiting upload, the audit log grown): the recovery point is about this plus
    /// the time the increment waits for dummy slots.
    /// </summary>
    [Range(1, 3600)]
    public int IncrementCheckSeconds { get; init; } = 5;

    /// <summary>The backup counts as behind (readiness degraded, alarm) when its newest complete generation is older than this.</summary>
    [Range(1, 365 * 24 * 3600)]
    public int LagAlarmSeconds { get; init; } = 4 * 3600;

    /// <summary>
    /// 0 (the default): every generation stays in the backend, each object in place of a dummy that
    /// would have stayed. n: the n newest complete generations stay whole; when a generation
    /// completes, every older one is retired: each of its objects (base, manifest, increments) is
    /// deleted at its own random time, as a deleted record's blocks are, except its object 0, which
    /// recovery needs to find the newest generation. Off by default because those deletes tell the
    /// cloud which writes were cover (docs/backup-and-recovery.md, "What the cloud can and cannot learn").
    /// </summary>
    [Range(0, 1_000_000)]
    public int KeepGenerations { get; init; }

    /// <summary>Every reason this configuration cannot run, at once.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (IntervalSeconds is < 1 or > 31 * 24 * 3600)
        {
            errors.Add("TrustedProxy:Backup:IntervalSeconds must be between 1 and 2678400");
        }

        if (IncrementCheckSeconds is < 1 or > 3600)
        {
            errors.Add("TrustedProxy:Backup:IncrementCheckSeconds must be between 1 and 3600");
        }

        if (LagAlarmSeconds < 1)
        {
            errors.Add("TrustedProxy:Backup:LagAlarmSeconds must be at least 1");
        }

        if (KeepGenerations is < 0 or > 1_000_000)
        {
            errors.Add("TrustedProxy:Backup:KeepGenerations must be between 0 (keep every generation) and 1000000");
        }

        return errors;
    }
}
