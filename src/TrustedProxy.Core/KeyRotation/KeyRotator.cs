using System.Diagnostics;
using Microsoft.Data.Sqlite;
using TrustedProxy.Audit;
using TrustedProxy.Crypto;
using TrustedProxy.Records;

namespace TrustedProxy.KeyRotation;

/// <summary>How a rotation ended.</summary>
/// <param name="TargetVersion">The version every data key is now (or is to be) wrapped under.</param>
/// <param name="Resumed">It continued a rotation that a crash or a stop had left.</param>
/// <param name="Rewrapped">Rows re-wrapped by this run.</param>
/// <param name="Conflicts">Rows that changed between this run's read and its write; left as they were and taken again by a later pass.</param>
/// <param name="Unreadable">Rows whose wrapped key opens under no version (altered or foreign): not re-wrapped, so their version cannot be retired.</param>
/// <param name="Retired">The versions retired at the end; empty if rows still refer to older ones.</param>
/// <param name="Remaining">Rows still wrapped under an older version.</param>
/// <param name="Elapsed">Wall-clock time of this run.</param>
/// <param name="ProcessorTime">Processor time this process spent meanwhile (all threads), for records per second per core.</param>
/// <param name="Finished">The older versions were retired and the rotation closed (a row arriving between the last count and the retirement, with no pass left, leaves it open).</param>
internal sealed record KeyRotationResult(long TargetVersion, bool Resumed, long Rewrapped, long Conflicts, IReadOnlyList<string> Unreadable, IReadOnlyList<int> Retired, long Remaining, TimeSpan Elapsed, TimeSpan ProcessorTime, bool Finished)
{
    public bool Complete => Finished;
}

/// <summary>Where a running rotation is (after each batch).</summary>
internal sealed record KeyRotationProgress(long TargetVersion, int Pass, string Cursor, long Rewrapped, long Conflicts);

/// <summary>
/// Re-wraps every data key in the index under the newest key-encryption-key version, online:
/// batches of rows read from a WAL snapshot, re-wrapped outside any lock, and written in one short
/// transaction that compares each row's wrapped key with the one read (a row that changed meanwhile,
/// by a deletion or a record's own re-encryption, is never overwritten with an older data key) and
/// moves the durable cursor with them. A kill at any point loses at most the batch in flight;
/// running again resumes at the cursor. Old versions are retired once no row refers to them.
/// </summary>
internal sealed class KeyRotator(RecordIndex index, KeyEncryptionKeys keys, KeyRotationOptions options, TimeProvider time)
{
    private readonly KeyVersionStore _store = new(index, time);

    /// <param name="audit">Appends an entry to the audit log (start or resume, progress, finish).</param>
    /// <param name="progress">Told after every batch (the command line's progress; a test's stop).</param>
    /// <param name="cancellationToken">Checked between batches: a stop leaves the rotation to resume, as a crash would.</param>
    public async Task<KeyRotationResult> RunAsync(Func<AuditEvent, Task> audit, Action<KeyRotationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        if (options.Validate().FirstOrDefault() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        var clock = Stopwatch.StartNew();
        var cpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
        var (rotation, resumed) = _store.BeginOrResume();
        var target = rotation.TargetVersion;
        await audit(AuditEvents.KeyRotationStart(target, resumed, _store.Remaining(target), rotation.Rewrapped, options.BatchSize)).ConfigureAwait(false);

        var cursor = rotation.Cursor;
        var pass = (int)rotation.Passes;
        long rewrapped = 0, conflicts = 0, nextAudit = options.AuditEvery;
        var unreadable = new List<string>();
        IReadOnlyList<int> retired = [];
        var finished = false;
        long remaining;
        while (true)
        {
            long rewrappedThisPass = 0;
            unreadable.Clear();
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var batch = ReadBatch(target, cursor);
                if (batch.Count == 0)
                {
                    break;
                }

                var (written, conflicted) = WriteBatch(target, batch, unreadable);
                cursor = batch[^1].Handle;
                rewrapped += written;
                rewrappedThisPass += written;
                conflicts += conflicted;
                progress?.Invoke(new KeyRotationProgress(target, pass, cursor, rewrapped, conflicts));
                if (rewrapped >= nextAudit)
                {
                    nextAudit = rewrapped + options.AuditEvery;
                    await audit(AuditEvents.KeyRotationProgress(target, pass, rewrapped, conflicts)).ConfigureAwait(false);
                }
            }

            remaining = _store.Remaining(target);
            if (remaining == 0 && _store.TryRetire(target) is { } versions)
            {
                retired = versions;
                finished = true;
                break;
            }

            // What is left was wrapped under the old version by an upload that read it before the
            // rotation began, or changed under a batch; another pass takes it. A pass that re-wrapped
            // nothing would only repeat itself: the rows left cannot be re-wrapped.
            if (rewrappedThisPass == 0 && remaining > 0 || pass + 1 >= options.MaxPasses)
            {
                break;
            }

            _store.NextPass(target);
            pass++;
            cursor = "";
        }

        var result = new KeyRotationResult(target, resumed, rewrapped, conflicts, unreadable.ToList(), retired, remaining, clock.Elapsed,
            Process.GetCurrentProcess().TotalProcessorTime - cpuAtStart, finished);
        await audit(AuditEvents.KeyRotationFinish(result)).ConfigureAwait(false);
        return result;
    }

    private sealed record Row(string Handle, byte[] WrappedKey, byte[] Rewrapped);

    private sealed record Candidate(string Handle, byte[] WrappedKey);

    // Reads outside any write transaction (WAL: a snapshot, no lock on writers). "+key_version"
    // keeps SQLite on the primary key, which walks the cursor in order, rather than the version index.
    private List<Candidate> ReadBatch(long target, string cursor)
    {
        using var connection = index.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT handle, wrapped_key FROM record_keys WHERE handle > $cursor AND +key_version < $target ORDER BY handle LIMIT $limit";
        command.Parameters.AddWithValue("$cursor", cursor);
        command.Parameters.AddWithValue("$target", target);
        command.Parameters.AddWithValue("$limit", options.BatchSize);
        using var reader = command.ExecuteReader();
        var batch = new List<Candidate>(options.BatchSize);
        while (reader.Read())
        {
            batch.Add(new Candidate(reader.GetString(0), (byte[])reader.GetValue(1)));
        }

        return batch;
    }

    private (long Written, long Conflicts) WriteBatch(long target, List<Candidate> batch, List<string> unreadable)
    {
        // The cryptography happens before the transaction, so the write lock is held only for the updates.
        var rows = new List<Row>(batch.Count);
        foreach (var candidate in batch)
        {
            try
            {
                using var dataKey = keys.Unwrap(candidate.WrappedKey, candidate.Handle);
                rows.Add(new Row(candidate.Handle, candidate.WrappedKey, keys.Wrap(dataKey, candidate.Handle, (int)target)));
            }
            catch (EnvelopeIntegrityException)
            {
                unreadable.Add(candidate.Handle);
            }
        }

        using var connection = index.Open();

        // A batch needs to be atomic (rows and cursor together), not durable: WAL keeps it atomic
        // without the fsync, and a batch lost to a power cut is re-wrapped on resume (its rows and
        // its cursor are lost together). The server's next commit, or the retirement's, syncs it.
        connection.CreateCommand().Also(c => c.CommandText = "PRAGMA synchronous = NORMAL").ExecuteNonQuery();
        using var transaction = connection.BeginTransaction(deferred: false);
        using var update = connection.CreateCommand();
        update.Transaction = transaction;

        // Compare-and-set on the wrapped key read (its nonce is random, so equal means unchanged).
        update.CommandText = "UPDATE record_keys SET wrapped_key = $new, key_version = $target WHERE handle = $handle AND wrapped_key = $old";
        var newKey = KeyVersionStore.Parameter(update, "$new", SqliteType.Blob);
        var oldKey = KeyVersionStore.Parameter(update, "$old", SqliteType.Blob);
        var handle = KeyVersionStore.Parameter(update, "$handle", SqliteType.Text);
        KeyVersionStore.Parameter(update, "$target", SqliteType.Integer).Value = target;
        update.Prepare();
        long written = 0;
        foreach (var row in rows)
        {
            newKey.Value = row.Rewrapped;
            oldKey.Value = row.WrappedKey;
            handle.Value = row.Handle;
            written += update.ExecuteNonQuery();
        }

        var conflicts = rows.Count - written;
        using var cursor = connection.CreateCommand();
        cursor.Transaction = transaction;
        cursor.CommandText = "UPDATE key_rotations SET cursor = $cursor, rewrapped = rewrapped + $written, conflicts = conflicts + $conflicts WHERE target_version = $target";
        cursor.Parameters.AddWithValue("$cursor", batch[^1].Handle);
        cursor.Parameters.AddWithValue("$written", written);
        cursor.Parameters.AddWithValue("$conflicts", conflicts);
        cursor.Parameters.AddWithValue("$target", target);
        cursor.ExecuteNonQuery();
        transaction.Commit();
        return (written, conflicts);
    }
}

file static class CommandExtensions
{
    public static SqliteCommand Also(this SqliteCommand command, Action<SqliteCommand> change)
    {
        change(command);
        return command;
    }
}
