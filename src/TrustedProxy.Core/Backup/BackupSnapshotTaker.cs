using Microsoft.Data.Sqlite;
using TrustedProxy.Crypto;
using TrustedProxy.IO;

namespace TrustedProxy.Backup;

/// <summary>What a snapshot holds, for the manifest.</summary>
internal sealed record SnapshotCounts(long Records, long WaitingBlocks, int QueuedRelocations, long AuditBytes);

/// <summary>A consistent copy of the proxy's state in a work directory, as entry path → file.</summary>
internal sealed record Snapshot(IReadOnlyList<(string Path, string Source)> Files, SnapshotCounts Counts);

/// <summary>
/// Takes a consistent copy of everything the proxy needs to go on serving, without stopping it:
/// the index through SQLite's online backup API (a transaction-consistent copy, page for page), the cached ciphertext of
/// every record the copy says is waiting, the relocation queue, the audit log and its checkpoint
/// under the audit append lock, the retrieval cover model, and the certificates directory (the CA
/// key as it is, encrypted, with its passphrase file; SQLite files there also through
/// <c>VACUUM INTO</c>). Never the master key: a backup is opened with it, so it travels separately,
/// as custodians' shares. A release between the index copy and the cache copy (a waiting record's
/// file gone) makes the snapshot be taken again.
/// </summary>
internal sealed class BackupSnapshotTaker(string dataDirectory, string certsDirectory, TimeSpan auditLockTimeout)
{
    private const int Attempts = 5;

    /// <param name="workDirectory">Where the copy is made (emptied first).</param>
    /// <param name="cancellationToken">Stops between files.</param>
    /// <param name="alreadyHeld">
    /// Staging and relocation entries the backend already holds (an increment's chain): not copied,
    /// and left out of the snapshot, since an increment would leave them out anyway (they are the
    /// bulk of the state: every waiting upload's ciphertext).
    /// </param>
    public async Task<Snapshot> TakeAsync(string workDirectory, CancellationToken cancellationToken, IReadOnlySet<string>? alreadyHeld = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (Directory.Exists(workDirectory))
            {
                Directory.Delete(workDirectory, recursive: true);
            }

            SecretFile.EnsurePrivateDirectory(workDirectory);
            var taken = await TryTakeAsync(workDirectory, alreadyHeld ?? new HashSet<string>(), cancellationToken).ConfigureAwait(false);
            if (taken is not null)
            {
                return taken;
            }

            if (attempt == Attempts)
            {
                throw new IOException($"no consistent snapshot after {Attempts} attempts: the upload cache released waiting blocks during each");
            }
        }
    }

    /// <summary>
    /// Whether the state moved on from what the backend holds (cheap: names and one length, no index
    /// read): a waiting upload's or a queued relocation's file not in <paramref name="shipped"/>, or
    /// the audit log longer than <paramref name="auditBytes"/> (uploads, deletions, certificate
    /// changes and policy decisions are all audited). A release alone changes neither: the restored
    /// index then holds a block as waiting whose object the cloud already has, and its put-if-absent
    /// after start finds it there.
    /// </summary>
    public bool ChangedSince(IReadOnlySet<string> shipped, long auditBytes)
    {
        var auditLog = new FileInfo(Path.Combine(dataDirectory, "audit", "audit.log"));
        if (auditLog.Exists && auditLog.Length > auditBytes)
        {
            return true;
        }

        var staging = Path.Combine(dataDirectory, "staging");
        return (Directory.Exists(staging) && Directory.EnumerateFiles(staging, "*.tpx").Any(f => !shipped.Contains($"data/staging/{Path.GetFileName(f)}")))
            || (Directory.Exists(Path.Combine(staging, "relocations")) && Directory.EnumerateFiles(Path.Combine(staging, "relocations"), "*.tpx").Any(f => !shipped.Contains($"data/staging/relocations/{Path.GetFileName(f)}")));
    }

    private async Task<Snapshot?> TryTakeAsync(string work, IReadOnlySet<string> alreadyHeld, CancellationToken cancellationToken)
    {
        var files = new List<(string Path, string Source)>();

        // The queue first: a relocation finished after this copy leaves a file the restored proxy
        // relocates again from the index's (older) place, which is still whole.
        var relocations = Path.Combine(dataDirectory, "staging", "relocations");
        var queued = 0;
        if (Directory.Exists(relocations))
        {
            foreach (var file in Directory.EnumerateFiles(relocations, "*.tpx").Order(StringComparer.Ordinal))
            {
                var path = $"data/staging/relocations/{Path.GetFileName(file)}";
                if (alreadyHeld.Contains(path) ? File.Exists(file) : Copy(file, work, path, files))
                {
                    queued++;
                }
            }
        }

        var index = Path.Combine(dataDirectory, "proxy.db");
        var indexCopy = Target(work, "data/proxy.db");
        CopyPages(index, indexCopy);
        files.Add(("data/proxy.db", indexCopy));
        var (records, waiting, handles) = ReadIndex(indexCopy);

        foreach (var handle in handles)
        {
            var file = Path.Combine(dataDirectory, "staging", handle + ".tpx");
            var path = $"data/staging/{handle}.tpx";
            if (alreadyHeld.Contains(path))
            {
                continue;
            }

            if (!Copy(file, work, path, files))
            {
                return null;
            }
        }

        long auditBytes;
        var audit = Path.Combine(dataDirectory, "audit");
        using (ExclusiveFileLock.Acquire(Path.Combine(audit, "audit.lock"), auditLockTimeout))
        {
            auditBytes = File.Exists(Path.Combine(audit, "audit.log")) ? new FileInfo(Path.Combine(audit, "audit.log")).Length : 0;
            foreach (var file in Directory.EnumerateFiles(audit).Order(StringComparer.Ordinal))
            {
                var name = Path.GetFileName(file);
                if (name != "audit.lock" && !name.EndsWith(".tmp", StringComparison.Ordinal))
                {
                    Copy(file, work, $"data/audit/{name}", files);
                }
            }
        }

        var retrieval = Path.Combine(dataDirectory, "retrieval");
        if (Directory.Exists(retrieval))
        {
            foreach (var file in Directory.EnumerateFiles(retrieval).Order(StringComparer.Ordinal))
            {
                Copy(file, work, $"data/retrieval/{Path.GetFileName(file)}", files);
            }
        }

        foreach (var file in Directory.EnumerateFiles(certsDirectory, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(certsDirectory, file).Replace(Path.DirectorySeparatorChar, '/');
            if (relative.EndsWith("-wal", StringComparison.Ordinal) || relative.EndsWith("-shm", StringComparison.Ordinal) || relative.EndsWith(".lock", StringComparison.Ordinal))
            {
                continue;
            }

            if (relative.EndsWith(".db", StringComparison.Ordinal))
            {
                var copy = Target(work, "certs/" + relative);
                Vacuum(file, copy);
                files.Add(("certs/" + relative, copy));
            }
            else
            {
                Copy(file, work, "certs/" + relative, files);
            }
        }

        await Task.CompletedTask.ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return new Snapshot(files, new SnapshotCounts(records, waiting, queued, auditBytes));
    }

    internal static (long Records, long Waiting, IReadOnlyList<string> Handles) ReadIndex(string copy)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = copy, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var count = connection.CreateCommand();
        count.CommandText = "SELECT COUNT(*) FROM records";
        var records = (long)count.ExecuteScalar()!;
        using var blocks = connection.CreateCommand();
        blocks.CommandText = "SELECT COUNT(*) FROM blocks WHERE state = 'Cached' AND kind = 'Real'";
        var waiting = (long)blocks.ExecuteScalar()!;
        using var handles = connection.CreateCommand();
        handles.CommandText = "SELECT DISTINCT handle FROM blocks WHERE state = 'Cached' AND kind = 'Real' AND handle IS NOT NULL ORDER BY handle";
        var list = new List<string>();
        using (var reader = handles.ExecuteReader())
        {
            while (reader.Read())
            {
                list.Add(reader.GetString(0));
            }
        }

        return (records, waiting, list);
    }

    /// <summary>
    /// A transaction-consistent copy through SQLite's online backup API: page for page, so a page keeps
    /// its number from one copy to the next and an increment can carry only the pages that changed
    /// (<see cref="IndexPagePatch"/>). The copy is switched to a rollback journal so that it is one file.
    /// </summary>
    private static void CopyPages(string database, string copy)
    {
        BackupStreamFormat.CreateOwnerOnly(Path.GetDirectoryName(copy)!);
        using (var source = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString()))
        using (var destination = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = copy, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString()))
        {
            source.Open();
            destination.Open();
            source.BackupDatabase(destination);
            using var journal = destination.CreateCommand();
            journal.CommandText = "PRAGMA journal_mode=DELETE";
            journal.ExecuteScalar();
        }

        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    private static void Vacuum(string database, string copy)
    {
        BackupStreamFormat.CreateOwnerOnly(Path.GetDirectoryName(copy)!);
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "VACUUM INTO $target";
        command.Parameters.AddWithValue("$target", copy);
        command.ExecuteNonQuery();
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    // False when the file is gone (released or relocated meanwhile).
    private static bool Copy(string source, string work, string path, List<(string Path, string Source)> files)
    {
        var target = Target(work, path);
        BackupStreamFormat.CreateOwnerOnly(Path.GetDirectoryName(target)!);
        try
        {
            using var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var output = new FileStream(target, SecretFile.OwnerOnlyOptions(FileMode.CreateNew, FileAccess.Write, FileOptions.None));
            input.CopyTo(output);
        }
        catch (FileNotFoundException)
        {
            return false;
        }

        files.Add((path, target));
        return true;
    }

    private static string Target(string work, string path) => Path.Combine(work, path.Replace('/', Path.DirectorySeparatorChar));
}
