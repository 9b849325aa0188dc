using System.Text.Json;
using System.Text.Json.Serialization;

namespace TrustedProxy.Backup;

/// <summary>
/// The last object of an increment, shipped only after its data objects: an increment with a commit
/// is complete, and recovery replays only complete increments, in order. It pins the increment's
/// stream (length, SHA-256) and says where its audit tail starts in the log.
/// </summary>
/// <param name="Format">Always 1.</param>
/// <param name="Generation">The generation this increment extends (also bound into every object's associated data).</param>
/// <param name="Increment">Its number within the generation, from 0 (also bound into the associated data).</param>
/// <param name="CreatedAt">When its state was taken: the backup point once it is replayed.</param>
/// <param name="DataObjects">Data objects before the commit.</param>
/// <param name="StreamBytes">Length of the plaintext stream.</param>
/// <param name="StreamSha256">SHA-256 of the plaintext stream, lowercase hex.</param>
/// <param name="Entries">Files in the stream.</param>
/// <param name="AuditFrom">The audit log's length before this increment's tail (entry <c>data/audit/audit.log</c> holds the bytes from here).</param>
/// <param name="Records">Records in the index it carries.</param>
/// <param name="WaitingBlocks">Real blocks waiting in that index.</param>
/// <param name="Handles">Handles of the waiting uploads whose ciphertext this increment carries for the first time in its generation (for the report only; as many as fit in the commit object).</param>
/// <param name="HandlesOmitted">How many more such uploads it carries whose handles did not fit in the commit object (0 in commits written before this field).</param>
internal sealed record BackupIncrementCommit(
    int Format, long Generation, long Increment, DateTimeOffset CreatedAt, long DataObjects, long StreamBytes, string StreamSha256,
    int Entries, long AuditFrom, long Records, long WaitingBlocks, IReadOnlyList<string> Handles, int HandlesOmitted = 0)
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    public static BackupIncrementCommit Parse(ReadOnlySpan<byte> bytes, long generation, long increment)
    {
        BackupIncrementCommit? commit;
        try
        {
            commit = JsonSerializer.Deserialize<BackupIncrementCommit>(bytes, Json);
        }
        catch (JsonException)
        {
            commit = null;
        }

        if (commit is null || commit.Format != 1 || commit.Generation != generation || commit.Increment != increment || commit.DataObjects < 1
            || commit.StreamBytes < 0 || commit.StreamSha256?.Length != 64 || commit.AuditFrom < 0 || commit.Handles is null || commit.HandlesOmitted < 0)
        {
            throw new BackupIntegrityException($"the commit of increment {increment} of generation {generation} is not a valid commit");
        }

        return commit;
    }
}
