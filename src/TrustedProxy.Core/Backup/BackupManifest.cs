using System.Text.Json;
using System.Text.Json.Serialization;

namespace TrustedProxy.Backup;

/// <summary>
/// The last object of a generation: shipped only after every data object, so a generation with a
/// manifest is complete. It pins the stream (length, SHA-256, which covers the entry table and so
/// every entry's SHA-256) and says what the generation holds.
/// </summary>
/// <param name="Format">Always 1.</param>
/// <param name="Generation">The generation number (also bound into every object's associated data).</param>
/// <param name="CreatedAt">When the snapshot was taken: the backup point.</param>
/// <param name="DataObjects">Data objects before the manifest (sequences 0 … DataObjects-1).</param>
/// <param name="StreamBytes">Length of the plaintext stream.</param>
/// <param name="StreamSha256">SHA-256 of the plaintext stream, lowercase hex.</param>
/// <param name="Entries">Files in the stream.</param>
/// <param name="Records">Records in the index.</param>
/// <param name="WaitingBlocks">Real blocks waiting in the upload cache, their ciphertext included.</param>
/// <param name="QueuedRelocations">Records waiting in the relocation queue, their ciphertext included.</param>
/// <param name="AuditBytes">Length of the audit log.</param>
internal sealed record BackupManifest(
    int Format, long Generation, DateTimeOffset CreatedAt, long DataObjects, long StreamBytes, string StreamSha256,
    int Entries, long Records, long WaitingBlocks, int QueuedRelocations, long AuditBytes)
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    public static BackupManifest Parse(ReadOnlySpan<byte> bytes, long generation)
    {
        BackupManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<BackupManifest>(bytes, Json);
        }
        catch (JsonException)
        {
            manifest = null;
        }

        if (manifest is null || manifest.Format != 1 || manifest.Generation != generation || manifest.DataObjects < 1 || manifest.StreamBytes < 0 || manifest.StreamSha256.Length != 64)
        {
            throw new BackupIntegrityException($"the manifest of generation {generation} is not a valid manifest");
        }

        return manifest;
    }
}
