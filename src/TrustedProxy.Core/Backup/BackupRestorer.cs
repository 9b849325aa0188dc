using System.Security.Cryptography;
using TrustedProxy.Crypto;
using TrustedProxy.Storage;

namespace TrustedProxy.Backup;

/// <summary>
/// A generation found in the backend, its manifest opened and checked. <paramref name="Newest"/> is
/// the highest generation number with an object in the backend (complete or not): a restored proxy
/// ships its next generation after it. <paramref name="Fallback"/>: the other complete generation to
/// restore if this one turns out damaged.
/// </summary>
internal sealed record FoundGeneration(long Generation, BackupManifest Manifest, long Newest = -1, FoundGeneration? Fallback = null);

/// <summary>How far a generation's chain reaches: its last committed increment before the first gap (null: none), and the backup point that gives.</summary>
internal sealed record ChainReach(long? LastIncrement, DateTimeOffset BackupPoint);

/// <summary>
/// The increments replayed on a generation, in order, and where the replay stopped: at the first
/// increment without a commit. <paramref name="Gap"/> is that increment's number when a later
/// increment is committed (one in the middle is missing: the later ones are not applied).
/// <paramref name="Handles"/> are the waiting uploads whose ciphertext came from the applied
/// increments (no patient identifier), in order: each increment's new <c>data/staging/&lt;handle&gt;.tpx</c> entries.
/// </summary>
internal sealed record IncrementReplay(IReadOnlyList<BackupIncrementCommit> Applied, long? Gap, long? LaterCommitted, IReadOnlyList<string> Handles)
{
    public BackupIncrementCommit? Last => Applied.Count > 0 ? Applied[^1] : null;
}

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

    public async Task<FoundGeneration?> FindNewestCompleteAsync(CancellationToken cancellationToken) =>
        (await FindCompleteAsync(1, cancellationToken).ConfigureAwait(false)) is [var newest, ..] ? newest : null;

    /// <summary>
    /// Up to <paramref name="count"/> complete generations, newest first, within the lookback below
    /// the newest generation present. A damaged manifest is skipped; if no manifest opens, the first
    /// damage is thrown.
    /// </summary>
    public async Task<IReadOnlyList<FoundGeneration>> FindCompleteAsync(int count, CancellationToken cancellationToken)
    {
        if (!await store.ExistsAsync(keys.NameOf(0, 0), cancellationToken).ConfigureAwait(false))
        {
            return [];
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
        var found = new List<FoundGeneration>();
        for (var generation = present; generation >= Math.Max(0, present - Lookback) && found.Count < count; generation--)
        {
            var manifestName = keys.ManifestNameOf(generation);
            if (!await store.ExistsAsync(manifestName, cancellationToken).ConfigureAwait(false))
            {
                continue;
            }

            try
            {
                var manifest = BackupManifest.Parse(sealer.Open(generation, BackupKeys.ManifestSequence, await ReadAsync(manifestName, cancellationToken).ConfigureAwait(false)), generation);
                found.Add(new FoundGeneration(generation, manifest, present));
            }
            catch (BackupIntegrityException ex)
            {
                damaged ??= ex;
            }
        }

        return found.Count > 0 || damaged is null ? found : throw damaged;
    }

    /// <summary>
    /// How far <paramref name="found"/>'s increments reach, as a replay would go: commits probed in
    /// order from 0 to the first missing, the last one opened for its time. Nothing is written.
    /// </summary>
    public async Task<ChainReach> ReachAsync(FoundGeneration found, CancellationToken cancellationToken)
    {
        long? last = null;
        for (long increment = 0; increment < BackupKeys.MaxIncrements; increment++)
        {
            if (!await store.ExistsAsync(keys.CommitNameOf(found.Generation, increment), cancellationToken).ConfigureAwait(false))
            {
                break;
            }

            last = increment;
        }

        if (last is not { } k)
        {
            return new ChainReach(null, found.Manifest.CreatedAt);
        }

        var commit = BackupIncrementCommit.Parse(
            sealer.Open(found.Generation, BackupKeys.IncrementSequence(k, BackupKeys.CommitIndex), await ReadAsync(keys.CommitNameOf(found.Generation, k), cancellationToken).ConfigureAwait(false)),
            found.Generation,
            k);
        return new ChainReach(k, commit.CreatedAt);
    }

    /// <summary>
    /// Reads generation <paramref name="found"/> into <paramref name="dataRoot"/> and <paramref name="certsRoot"/>
    /// (which must not exist yet), through a plaintext work file in <paramref name="workDirectory"/> deleted afterwards.
    /// </summary>
    public async Task<IReadOnlyList<BackupEntry>> RestoreAsync(FoundGeneration found, string dataRoot, string certsRoot, string workDirectory, CancellationToken cancellationToken)
    {
        var (generation, manifest) = (found.Generation, found.Manifest);
        SecretFile.EnsurePrivateDirectory(workDirectory);
        var streamFile = Path.Combine(workDirectory, $"generation-{generation}.stream");
        try
        {
            await using (var output = new FileStream(streamFile, SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.ReadWrite, FileOptions.None)))
            {
                await ReadStreamAsync(generation, s => (ulong)s, manifest.DataObjects, manifest.StreamBytes, manifest.StreamSha256, output, $"generation {generation}", cancellationToken).ConfigureAwait(false);

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

    /// <summary>
    /// Replays on a restored generation (in <paramref name="dataRoot"/> and <paramref name="certsRoot"/>)
    /// every committed increment, in order from 0, until the first without a commit. Each is read and
    /// checked whole (every object opened at its place, the stream against its commit) before any of it
    /// is applied: the index and the small files replaced, new staging and relocation files added, the
    /// audit tail appended where the commit says the log ended. A damaged committed increment throws.
    /// After the last, staging files the final index no longer holds as waiting are removed (released
    /// or erased after the generation's snapshot).
    /// </summary>
    public async Task<IncrementReplay> ReplayIncrementsAsync(FoundGeneration found, string dataRoot, string certsRoot, string workDirectory, CancellationToken cancellationToken)
    {
        var generation = found.Generation;
        var applied = new List<BackupIncrementCommit>();
        var handles = new List<string>();
        SecretFile.EnsurePrivateDirectory(workDirectory);
        for (long increment = 0; increment < BackupKeys.MaxIncrements; increment++)
        {
            var commitName = keys.CommitNameOf(generation, increment);
            if (!await store.ExistsAsync(commitName, cancellationToken).ConfigureAwait(false))
            {
                long? later = null;
                for (var next = increment + 1; next <= increment + Lookback && next < BackupKeys.MaxIncrements; next++)
                {
                    if (await store.ExistsAsync(keys.CommitNameOf(generation, next), cancellationToken).ConfigureAwait(false))
                    {
                        later = next;
                        break;
                    }
                }

                if (applied.Count > 0)
                {
                    PruneStaging(dataRoot);
                }

                return new IncrementReplay(applied, later is null ? null : increment, later, handles);
            }

            var commitSequence = BackupKeys.IncrementSequence(increment, BackupKeys.CommitIndex);
            var commit = BackupIncrementCommit.Parse(sealer.Open(generation, commitSequence, await ReadAsync(commitName, cancellationToken).ConfigureAwait(false)), generation, increment);
            var streamFile = Path.Combine(workDirectory, $"increment-{increment}.stream");
            var extracted = Path.Combine(workDirectory, $"increment-{increment}");
            try
            {
                IReadOnlyList<BackupEntry> entries;
                await using (var output = new FileStream(streamFile, SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.ReadWrite, FileOptions.None)))
                {
                    var k = increment;
                    await ReadStreamAsync(generation, i => BackupKeys.IncrementSequence(k, i), commit.DataObjects, commit.StreamBytes, commit.StreamSha256, output, $"increment {increment} of generation {generation}", cancellationToken).ConfigureAwait(false);
                    output.Position = 0;
                    SecretFile.EnsurePrivateDirectory(Path.Combine(extracted, "data"));
                    SecretFile.EnsurePrivateDirectory(Path.Combine(extracted, "certs"));
                    entries = await BackupStreamFormat.ExtractAsync(output, Path.Combine(extracted, "data"), Path.Combine(extracted, "certs"), cancellationToken).ConfigureAwait(false);
                }

                if (entries.Count != commit.Entries)
                {
                    throw new BackupIntegrityException($"increment {increment} of generation {generation} holds {entries.Count} entries, its commit says {commit.Entries}");
                }

                foreach (var entry in entries)
                {
                    var source = Path.Combine(extracted, entry.Path.Replace('/', Path.DirectorySeparatorChar));
                    var target = entry.Path.StartsWith(BackupStreamFormat.DataPrefix, StringComparison.Ordinal)
                        ? Path.Combine(dataRoot, entry.Path[BackupStreamFormat.DataPrefix.Length..].Replace('/', Path.DirectorySeparatorChar))
                        : Path.Combine(certsRoot, entry.Path[BackupStreamFormat.CertsPrefix.Length..].Replace('/', Path.DirectorySeparatorChar));
                    BackupStreamFormat.CreateOwnerOnly(Path.GetDirectoryName(target)!);
                    if (entry.Path == "data/audit/audit.log")
                    {
                        AppendAuditTail(source, target, commit);
                    }
                    else if (entry.Path == IndexPagePatch.EntryPath)
                    {
                        IndexPagePatch.Apply(source, Path.Combine(dataRoot, "proxy.db"), $"increment {increment} of generation {generation}");
                    }
                    else
                    {
                        File.Copy(source, target, overwrite: true);
                    }
                }

                applied.Add(commit);
                handles.AddRange(entries.Select(e => e.Path).Where(IsUpload).Select(Path.GetFileNameWithoutExtension)!);
            }
            finally
            {
                File.Delete(streamFile);
                if (Directory.Exists(extracted))
                {
                    Directory.Delete(extracted, recursive: true);
                }
            }
        }

        return new IncrementReplay(applied, null, null, handles);
    }

    // An upload's cached ciphertext (not a queued relocation): an increment holds only those new to its generation.
    private static bool IsUpload(string entryPath) =>
        entryPath.StartsWith("data/staging/", StringComparison.Ordinal) && !entryPath.StartsWith("data/staging/relocations/", StringComparison.Ordinal) && entryPath.EndsWith(".tpx", StringComparison.Ordinal);

    private static void AppendAuditTail(string tail, string log, BackupIncrementCommit commit)
    {
        var length = File.Exists(log) ? new FileInfo(log).Length : 0;
        if (length != commit.AuditFrom)
        {
            throw new BackupIntegrityException($"increment {commit.Increment} of generation {commit.Generation} continues the audit log at {commit.AuditFrom} bytes, the restored log has {length}");
        }

        using var output = new FileStream(log, SecretFile.OwnerOnlyOptions(FileMode.Append, FileAccess.Write, FileOptions.None));
        using var input = File.OpenRead(tail);
        input.CopyTo(output);
    }

    private static void PruneStaging(string dataRoot)
    {
        var staging = Path.Combine(dataRoot, "staging");
        var index = Path.Combine(dataRoot, "proxy.db");
        if (!Directory.Exists(staging) || !File.Exists(index))
        {
            return;
        }

        var waiting = BackupSnapshotTaker.ReadIndex(index).Handles.ToHashSet(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(staging, "*.tpx"))
        {
            if (!waiting.Contains(Path.GetFileNameWithoutExtension(file)))
            {
                File.Delete(file);
            }
        }
    }

    /// <summary>
    /// How many objects are read (and opened) at once: a real backend costs a round trip per object,
    /// so one at a time bounds a recovery by latency, not bandwidth; memory is this many blocks.
    /// </summary>
    public int ReadConcurrency { get; init; } = DefaultReadConcurrency;

    public const int DefaultReadConcurrency = 16;

    // Objects 0 … dataObjects-1 (at sequenceOf(i)) into output, checked against the length and SHA-256
    // their closing object states. Up to ReadConcurrency objects are fetched and opened ahead; they are
    // hashed and written strictly in order.
    private async Task ReadStreamAsync(long generation, Func<long, ulong> sequenceOf, long dataObjects, long streamBytes, string streamSha256, Stream output, string what, CancellationToken cancellationToken)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var ahead = new Queue<Task<byte[]>>();
        long next = 0;
        try
        {
            for (long i = 0; i < dataObjects; i++)
            {
                while (next < dataObjects && ahead.Count < Math.Max(1, ReadConcurrency))
                {
                    var sequence = sequenceOf(next++);
                    ahead.Enqueue(Task.Run(() => FetchAndOpenAsync(generation, sequence, stop.Token), stop.Token));
                }

                var payload = await ahead.Dequeue().ConfigureAwait(false);
                WriteInOrder(payload, i);
                await output.WriteAsync(payload, cancellationToken).ConfigureAwait(false);
                CryptographicOperations.ZeroMemory(payload);
            }
        }
        finally
        {
            // A failure (or the caller's cancellation) stops the reads still in flight; their payloads are wiped.
            await stop.CancelAsync().ConfigureAwait(false);
            foreach (var pending in ahead)
            {
                try
                {
                    CryptographicOperations.ZeroMemory(await pending.ConfigureAwait(false));
                }
                catch (Exception ex) when (ex is OperationCanceledException or BackupIntegrityException or IOException or StoredObjectNotFoundException)
                {
                }
            }
        }

        void WriteInOrder(byte[] payload, long i)
        {
            if (payload.Length < sealer.PayloadCapacity && i != dataObjects - 1)
            {
                throw new BackupIntegrityException($"backup object {generation}/{BackupKeys.Describe(sequenceOf(i))} is short before the end of {what}");
            }

            sha.AppendData(payload);
        }

        if (output.Length != streamBytes || !string.Equals(Convert.ToHexStringLower(sha.GetHashAndReset()), streamSha256, StringComparison.Ordinal))
        {
            throw new BackupIntegrityException($"{what} does not match its {(what.StartsWith("increment", StringComparison.Ordinal) ? "commit" : "manifest")} (length or SHA-256 of the stream)");
        }
    }

    private async Task<byte[]> FetchAndOpenAsync(long generation, ulong sequence, CancellationToken cancellationToken)
    {
        byte[] sealedObject;
        try
        {
            sealedObject = await ReadAsync(keys.NameOf(generation, sequence), cancellationToken).ConfigureAwait(false);
        }
        catch (StoredObjectNotFoundException)
        {
            throw new BackupIntegrityException($"backup object {generation}/{BackupKeys.Describe(sequence)} is missing from the backend");
        }

        return sealer.Open(generation, sequence, sealedObject);
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
