using System.Text.Json;
using TrustedProxy.Crypto;

namespace TrustedProxy.Backup;

/// <summary>A generation being shipped: how many objects (manifest included) and how many are in the backend.</summary>
internal sealed record StagedGeneration(long Generation, long Objects, long Shipped, DateTimeOffset CreatedAt);

/// <summary>The newest generation whose manifest is in the backend.</summary>
internal sealed record CompleteGeneration(long Generation, DateTimeOffset CreatedAt, DateTimeOffset CompletedAt);

/// <summary>
/// The backup's progress, in <c>data/backup/state.json</c> (owner-only, rewritten atomically after
/// each shipped object), so a restart goes on where it stopped: the same staged file, the next
/// object. Generation numbers only go up; a restored proxy starts after the generation it came from.
/// </summary>
internal sealed record BackupState(long NextGeneration, StagedGeneration? Staged, CompleteGeneration? LastComplete, DateTimeOffset Since)
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
