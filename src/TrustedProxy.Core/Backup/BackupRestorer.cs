using System.Security.Cryptography;
using TrustedProxy.Crypto;
using TrustedProxy.Storage;

namespace TrustedProxy.Backup;

/// <summary>A generation found in the backend, its manifest opened and checked.</summary>
internal sealed record FoundGeneration(long Generation, BackupManifest Manifest);

/// <summary>
/// Finds and reads a backup with only the master key: generation numbers are probed upward (the
/// first object of each generation, by its derived name; galloping, then a binary search), and the
/// newest generation whose manifest exists and opens is the backup. Every object is opened (AES-GCM
/// bound to its generation and sequence), the reassembled stream checked against the manifest's
/// length and SHA-256, each entry against the entry table, before anything is written.
/// </summary>
internal sealed class BackupRestorer(IObjectStore store, BackupKeys keys, BackupObjectSealer sealer)
{
    /// <summary>How many generations below the newest are tried when newer ones are incomplete.</summary>
    private const int Lookback = 16;

    public async Task<FoundGeneration?> FindNewestCompleteAsync(CancellationToken cancellationToken)
    {
        if (!await store.ExistsAsync(keys.NameOf(0, 0), cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        // Generations start at 0 and are never skipped: find the last whose first object exists.
        long present = 0;
        long step = 1;
        while (await store.ExistsAsync(keys.NameOf(present + step, 0), cancellationToken).ConfigureAwait(false))
        {
            present += step;
            step *= 2;
        }

        var absent = present + step;
        while (absent - present > 1)
        {
            var middle = present + ((absent - present) / 2);
            if (await store.ExistsAsync(keys.NameOf(middle, 0), cancellationToken).ConfigureAwait(false))
            {
                present = middle;
            }
            else
            {
                absent = middle;
            }
        }

        BackupIntegrityException? damaged = null;
        for (var generation = present; generation >= Math.Max(0, present - Lookback); generation--)
        {
            var manifestName = keys.ManifestNameOf(generation);
            if (!await store.ExistsAsync(manifestName, cancellationToken).ConfigureAwait(false))
            {
                continue;
            }

            try
            {
                var manifest = BackupManifest.Parse(sealer.Open(generation, BackupKeys.ManifestSequence, await ReadAsync(manifestName, cancellationToken).ConfigureAwait(false)), generation);
                return new FoundGeneration(generation, manifest);
            }
            catch (BackupIntegrityException ex)
            {
                damaged ??= ex;
            }
        }

        return damaged is null ? null : throw damaged;
    }

    /// <summary>
    /// Reads generation <paramref name="found"/> into <paramref name="dataRoot"/> and <paramref name="certsRoot"/>
    /// (which must not exist yet), through a plaintext work file in <paramref name="workDirectory"/> deleted afterwards.
    /// </summary>
    public async Task<IReadOnlyList<BackupEntry>> RestoreAsync(FoundGeneration found, string dataRoot, string certsRoot, string workDirectory, CancellationToken cancellationToken)
    {
        var (generation, manifest) = found;
        SecretFile.EnsurePrivateDirectory(workDirectory);
        var streamFile = Path.Combine(workDirectory, $"generation-{generation}.stream");
        try
        {
            await using (var output = new FileStream(streamFile, SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.ReadWrite, FileOptions.None)))
            {
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                for (long sequence = 0; sequence < manifest.DataObjects; sequence++)
                {
                    var name = keys.NameOf(generation, (ulong)sequence);
                    byte[] sealedObject;
                    try
                    {
                        sealedObject = await ReadAsync(name, cancellationToken).ConfigureAwait(false);
                    }
                    catch (StoredObjectNotFoundException)
                    {
                        throw new BackupIntegrityException($"backup object {generation}/{sequence} is missing from the backend");
                    }

                    var payload = sealer.Open(generation, (ulong)sequence, sealedObject);
                    if (payload.Length < sealer.PayloadCapacity && sequence != manifest.DataObjects - 1)
                    {
                        throw new BackupIntegrityException($"backup object {generation}/{sequence} is short before the end of the generation");
                    }

                    sha.AppendData(payload);
                    await output.WriteAsync(payload, cancellationToken).ConfigureAwait(false);
                    CryptographicOperations.ZeroMemory(payload);
                }

                if (output.Length != manifest.StreamBytes || !string.Equals(Convert.ToHexStringLower(sha.GetHashAndReset()), manifest.StreamSha256, StringComparison.Ordinal))
                {
                    throw new BackupIntegrityException($"generation {generation} does not match its manifest (length or SHA-256 of the stream)");
                }

                output.Position = 0;
                SecretFile.EnsurePrivateDirectory(dataRoot);
                SecretFile.EnsurePrivateDirectory(certsRoot);
                var entries = await BackupStreamFormat.ExtractAsync(output, dataRoot, certsRoot, cancellationToken).ConfigureAwait(false);
                if (entries.Count != manifest.Entries)
                {
                    throw new BackupIntegrityException($"generation {generation} holds {entries.Count} entries, its manifest says {manifest.Entries}");
                }

                return entries;
            }
        }
        finally
        {
            File.Delete(streamFile);
        }
    }

    private async Task<byte[]> ReadAsync(ObjectName name, CancellationToken cancellationToken)
    {
        await using var input = await store.OpenReadAsync(name, cancellationToken).ConfigureAwait(false);
        var buffer = new byte[sealer.BlockSize + 1];
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

        return buffer[..total];
    }
}
