namespace TrustedProxy.KeyRotation;

/// <summary>The limits of a key-encryption-key rotation (<c>tproxy keys rotate</c>).</summary>
public sealed record KeyRotationOptions
{
    /// <summary>
    /// Rows re-wrapped per index transaction. Each transaction holds SQLite's write lock while it
    /// updates its rows (about 5 µs a row), so 1,000 rows keep an upload waiting a few milliseconds
    /// at most while the fsync per commit stays a small share of the work.
    /// </summary>
    public int BatchSize { get; init; } = 1_000;

    /// <summary>Records between two progress entries in the audit log.</summary>
    public long AuditEvery { get; init; } = 1_000_000;

    /// <summary>
    /// Passes over the index at most: the first re-wraps everything; a later one only rows that an
    /// upload wrapped under the old version while the first ran, or that changed under it. A pass
    /// that re-wraps nothing ends the rotation (what remains cannot be re-wrapped).
    /// </summary>
    public int MaxPasses { get; init; } = 10;

    public IEnumerable<string> Validate()
    {
        if (BatchSize is < 1 or > 100_000)
        {
            yield return $"the batch size must be 1 to 100000, not {BatchSize}";
        }

        if (AuditEvery < 1)
        {
            yield return $"the audit interval must be at least 1 record, not {AuditEvery}";
        }

        if (MaxPasses is < 1 or > 1_000)
        {
            yield return $"the number of passes must be 1 to 1000, not {MaxPasses}";
        }
    }
}
