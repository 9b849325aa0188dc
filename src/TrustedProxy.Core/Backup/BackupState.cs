using System.Text.Json;
using TrustedProxy.Crypto;

namespace TrustedProxy.Backup;

/// <summary>
/// A generation being shipped: how many objects (manifest included) and how many are in the backend;
/// the staging and relocation files (entry paths) it carries and the audit log's length in it, where
/// its increments start (they leave those files out, and their audit tail starts at that length).
/// </summary>
internal sealed record StagedGeneration(long Generation, long Objects, long Shipped, DateTimeOffset CreatedAt, IReadOnlyList<string>? BaseFiles = null, long BaseAuditBytes = 0);

/// <summary>An increment being shipped: its objects (commit included), how many are in the backend, and what it adds to the chain once committed.</summary>
internal sealed record StagedIncrement(long Increment, long Objects, long Shipped, DateTimeOffset CreatedAt, IReadOnlyList<string> Files, long AuditBytes);

/// <summary>The newest increment whose commit is in the backend.</summary>
internal sealed record CommittedIncrement(long Increment, DateTimeOffset CreatedAt, DateTimeOffset CommittedAt);

/// <summary>
/// The increments appended to the newest complete generation: which staging and relocation files
/// the backend holds for it (base and committed increments), how much of the audit log, the next
/// increment's number, the one being shipped, the newest committed. Broken: an increment's staged
/// file was lost after some of it left; no increment follows it (recovery would stop at the gap), so
/// a new generation is due at once.
/// </summary>
internal sealed record IncrementChain(long Generation, IReadOnlyList<string> Shipped, long AuditBytes, long NextIncrement, StagedIncrement? Staged, CommittedIncrement? Last, bool Broken = false);

/// <summary>The newest generation whose manifest is in the backend.</summary>
internal sealed record CompleteGeneration(long Generation, DateTimeOffset CreatedAt, DateTimeOffset CompletedAt);

/// <summary>
/// The backup's progress, in <c>data/backup/state.json</c> (owner-only, rewritten atomically after
/// each shipped object), so a restart goes on where it stopped: the same staged file, the next
/// object. Generation numbers only go up; a restored proxy starts after the generation it came from.
/// </summary>
internal sealed record BackupState(long NextGeneration, StagedGeneration? Staged, CompleteGeneration? LastComplete, DateTimeOffset Since, IncrementChain? Chain = null)
{
    public const string FileName = "state.json";
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

    public static BackupState? Read(string directory)
    {
        var path = Path.Combine(directory, FileName);
        return File.Exists(path) ? JsonSerializer.Deserialize<BackupState>(File.ReadAllBytes(path), Json) : null;
    }

    public void Write(string directory)
    {
        SecretFile.EnsurePrivateDirectory(directory);
        var temporary = Path.Combine(directory, $".{FileName}.{Guid.NewGuid():N}.tmp");
        SecretFile.Write(temporary, JsonSerializer.SerializeToUtf8Bytes(this, Json));
        File.Move(temporary, Path.Combine(directory, FileName), overwrite: true);
    }
}
