using System.Security.Cryptography;
using TrustedProxy.Crypto;

namespace TrustedProxy.Backup;

/// <summary>
/// Turns a snapshot into a generation ready to ship: the plaintext stream (a work file, owner-only,
/// deleted at once) cut into payloads, each sealed at its (generation, sequence), then the manifest
/// sealed at the manifest's sequence, all in one staged file of whole objects: object i at offset
/// i × block size, the manifest last. The staged file holds ciphertext only.
/// </summary>
internal sealed class BackupGenerationWriter(BackupObjectSealer sealer)
{
    public async Task<(long Objects, BackupManifest Manifest)> WriteAsync(
        Snapshot snapshot, long generation, DateTimeOffset createdAt, string workDirectory, string stagedFile, CancellationToken cancellationToken)
    {
        var streamFile = Path.Combine(workDirectory, "stream.bin");
        IReadOnlyList<BackupEntry> entries;
        await using (var stream = new FileStream(streamFile, SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.Write, FileOptions.None)))
        {
            entries = await BackupStreamFormat.WriteAsync(snapshot.Files, stream, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            var partial = stagedFile + ".part";
            long dataObjects = 0;
            byte[] hash;
            long streamBytes;
            await using (var input = File.OpenRead(streamFile))
            await using (var output = new FileStream(partial, SecretFile.OwnerOnlyOptions(FileMode.Create, FileAccess.Write, FileOptions.None)))
            {
                streamBytes = input.Length;
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var payload = new byte[sealer.PayloadCapacity];
                while (true)
                {
                    var read = await ReadFullAsync(input, payload, cancellationToken).ConfigureAwait(false);
                    if (read == 0 && dataObjects > 0)
                    {
                        break;
                    }

                    sha.AppendData(payload, 0, read);
                    await output.WriteAsync(sealer.Seal(generation, (ulong)dataObjects, payload.AsSpan(0, read)), cancellationToken).ConfigureAwait(false);
                    dataObjects++;
                    if (read < payload.Length)
                    {
                        break;
                    }
                }

                CryptographicOperations.ZeroMemory(payload);
                hash = sha.GetHashAndReset();
                var counts = snapshot.Counts;
                var manifest = new BackupManifest(1, generation, createdAt, dataObjects, streamBytes, Convert.ToHexStringLower(hash), entries.Count, counts.Records, counts.WaitingBlocks, counts.QueuedRelocations, counts.AuditBytes);
                await output.WriteAsync(sealer.Seal(generation, BackupKeys.ManifestSequence, manifest.ToBytes()), cancellationToken).ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                output.Flush(flushToDisk: true);
                File.Move(partial, stagedFile, overwrite: true);
                return (dataObjects + 1, manifest);
            }
        }
        finally
        {
            File.Delete(streamFile);
        }
    }

    private static async Task<int> ReadFullAsync(Stream input, byte[] buffer, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var read = await input.ReadAsync(buffer.AsMemory(total), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }
}
