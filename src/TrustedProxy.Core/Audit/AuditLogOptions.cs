using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.Audit;

/// <summary>The tamper-evident audit log (docs/audit-log.md). Section TrustedProxy:Audit; the log lives in &lt;DataDirectory&gt;/audit.</summary>
public sealed record AuditLogOptions
{
    /// <summary>A signed checkpoint is appended once this many entries follow the last one.</summary>
    [Range(1, 1_000_000)]
    public int CheckpointEveryEntries { get; init; } = 1000;

    /// <summary>
    /// ...and at the latest this long after an entry that no checkpoint covers yet (and at shutdown).
    /// Entries not yet under a checkpoint can be cut off without a trace; this bounds how many.
    /// </summary>
    [Range(1, 86_400)]
    public int CheckpointEverySeconds { get; init; } = 10;

    /// <summary>Most appends written and fsync'd together (group commit).</summary>
    [Range(1, 100_000)]
    public int MaxBatchEntries { get; init; } = 1024;

    /// <summary>Longest one entry may be, in bytes; the verifier refuses longer lines.</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxEntryBytes { get; init; } = 64 * 1024;

    /// <summary>Longest an append waits for another process (the command line) to release the log.</summary>
    [Range(1, 300)]
    public int LockTimeoutSeconds { get; init; } = 5;
}
