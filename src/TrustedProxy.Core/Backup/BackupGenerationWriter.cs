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
        BackupManifest? manifest = null;
        var objects = await WriteSealedAsync(
            snapshot.Files, generation, i => (ulong)i, BackupKeys.ManifestSequence,
            (dataObjects, streamBytes, hash, entries) =>
            {
                var counts = snapshot.Counts;
                manifest = new BackupManifest(1, generation, createdAt, dataObjects, streamBytes, hash, entries.Count, counts.Records, counts.WaitingBlocks, counts.QueuedRelocations, counts.AuditBytes);
                return manifest.ToBytes();
            },
            workDirectory, stagedFile, cancellationToken).ConfigureAwait(false);
        return (objects, manifest!);
    }

    /// <summary>
    /// Increment <paramref name="increment"/> of <paramref name="generation"/>: its entries sealed at
    /// the increment's sequences, its commit object last (<see cref="BackupKeys.IncrementSequence"/>).
    /// </summary>
    public async Task<(long Objects, BackupIncrementCommit Commit)> WriteIncrementAsync(
        IReadOnlyList<(string Path, string Source)> files, long generation, long increment, Func<long, long, string, int, BackupIncrementCommit> commitOf,
        string workDirectory, string stagedFile, CancellationToken cancellationToken)
    {
        BackupIncrementCommit? commit = null;
        var objects = await WriteSealedAsync(
            files, generation, i => BackupKeys.IncrementSequence(increment, i), BackupKeys.IncrementSequence(increment, BackupKeys.CommitIndex),
            (dataObjects, streamBytes, hash, entries) =>
            {
                commit = commitOf(dataObjects, streamBytes, hash, entries.Count);
                var bytes = commit.ToBytes();

                // The commit is one object. Its handle list only names the new uploads for the report;
                // with thousands of them (a backlog pushed, a backlog of the backup) it would not fit:
                // as many as fit are named, the rest counted.
                var all = commit.Handles;
                var keep = all.Count;
                while (bytes.Length > sealer.PayloadCapacity && keep > 0)
                {
                    keep = Math.Max(0, keep - Math.Max(1, (bytes.Length - sealer.PayloadCapacity + 28) / 29)); // a handle takes at least 29 bytes there
                    commit = commit with { Handles = [.. all.Take(keep)], HandlesOmitted = all.Count - keep };
                    bytes = commit.ToBytes();
                }

                return bytes;
            },
            workDirectory, stagedFile, cancellationToken).ConfigureAwait(false);
        return (objects, commit!);
    }

    // The stream of the files cut into payloads, each sealed at sequenceOf(i), then the closing
    // object (a manifest or a commit) sealed at closingSequence, in one staged file of whole objects.
    private async Task<long> WriteSealedAsync(
        IReadOnlyList<(string Path, string Source)> files, long generation, Func<long, ulong> sequenceOf, ulong closingSequence,
        Func<long, long, string, IReadOnlyList<BackupEntry>, byte[]> closing, string workDirectory, string stagedFile, CancellationToken cancellationToken)
    {
        var streamFile = Path.Combine(workDirectory, "stream.bin");
        IReadOnlyList<BackupEntry> entries;
        await using (var stream = new FileStream(streamFile, SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.Write, FileOptions.None)))
        {
            entries = await BackupStreamFormat.WriteAsync(files, stream, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            var partial = stagedFile + ".part";
            long dataObjects = 0;
            await using (var input = File.OpenRead(streamFile))
            await using (var output = new FileStream(partial, SecretFile.OwnerOnlyOptions(FileMode.Create, FileAccess.Write, FileOptions.None)))
            {
                var streamBytes = input.Length;
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
                    await output.WriteAsync(sealer.Seal(generation, sequenceOf(dataObjects), payload.AsSpan(0, read)), cancellationToken).ConfigureAwait(false);
                    dataObjects++;
                    if (read < payload.Length)
                    {
                        break;
                    }
                }

                CryptographicOperations.ZeroMemory(payload);
                var hash = Convert.ToHexStringLower(sha.GetHashAndReset());
                await output.WriteAsync(sealer.Seal(generation, closingSequence, closing(dataObjects, streamBytes, hash, entries)), cancellationToken).ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                output.Flush(flushToDisk: true);
            }

            File.Move(partial, stagedFile, overwrite: true);
            return dataObjects + 1;
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
