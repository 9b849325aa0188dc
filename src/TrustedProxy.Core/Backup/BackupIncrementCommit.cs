using System.Text.Json;
using System.Text.Json.Serialization;

namespace TrustedProxy.Backup;

/// <summary>
/// The last object of an increment, shipped only after its data objects: an increment with a commit
/// is complete, and recovery replays only complete increments, in order. It pins the increment's
/// stream (length, SHA-256) and says where its audit tail starts in the log. It is one object, so
/// its size must not grow with the increment: the uploads an increment carries are named by its
/// entries (<c>data/staging/&lt;handle&gt;.tpx</c>), not listed here (a list outgrew one 4 KiB object
/// at about 130 new uploads, and a 128 KiB one at about 4,500, after which no increment could be staged).
/// Commits written with a <c>handles</c> list still parse (the property is ignored).
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
internal sealed record BackupIncrementCommit(
    int Format, long Generation, long Increment, DateTimeOffset CreatedAt, long DataObjects, long StreamBytes, string StreamSha256,
    int Entries, long AuditFrom, long Records, long WaitingBlocks)
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
            || commit.StreamBytes < 0 || commit.StreamSha256?.Length != 64 || commit.AuditFrom < 0)
        {
            throw new BackupIntegrityException($"the commit of increment {increment} of generation {generation} is not a valid commit");
        }

        return commit;
    }
}
