using System.ComponentModel.DataAnnotations;

namespace TrustedProxy.Policy;

/// <summary>Where the policy files are and the limits of their use. Section TrustedProxy:Policy.</summary>
public sealed record PolicyOptions
{
    /// <summary>The directory of policy files (<c>*.yaml</c>, <c>*.yml</c>), relative to the content root; it must exist and hold at least one.</summary>
    [Required]
    public string Directory { get; init; } = "config/policies";

    /// <summary>Reload the files when they change. Off: a change needs a restart.</summary>
    public bool Watch { get; init; } = true;

    /// <summary>How long the files must be quiet after a change before they are reloaded (editors write in several steps).</summary>
    [Range(0, 60_000)]
    public int ReloadDebounceMilliseconds { get; init; } = 500;

    /// <summary>Largest policy file read.</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxFileBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>Most policy files in the directory.</summary>
    [Range(1, 10_000)]
    public int MaxFiles { get; init; } = 256;

    /// <summary>Longest break-glass justification (header <c>Break-Glass-Justification</c>), in characters.</summary>
    [Range(1, 4096)]
    public int MaxJustificationLength { get; init; } = 500;

    /// <summary>
    /// Most index entries one search may examine while the enforcement point filters them record by
    /// record; a search that reaches it answers what it found, with a Warning header saying so.
    /// </summary>
    [Range(1, 100_000_000)]
    public int MaxRecordsExamined { get; init; } = 100_000;
}
