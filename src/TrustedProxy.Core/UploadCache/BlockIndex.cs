using System.Globalization;
using Dapper;
using Microsoft.Data.Sqlite;
using TrustedProxy.Records;
using TrustedProxy.Storage;

namespace TrustedProxy.UploadCache;

/// <summary>Whether a cloud object carries part of a record or is cover traffic.</summary>
public enum BlockKind
{
    /// <summary>Part of a record's current ciphertext.</summary>
    Real,

    /// <summary>Cover traffic: random bytes.</summary>
    Dummy,

    /// <summary>Part of a record's earlier ciphertext, left behind when the record was relocated after a read: a decoy now.</summary>
    Retired,
}

/// <summary>Where a block is.</summary>
public enum BlockState
{
    /// <summary>Only in the local cache (a dummy: not yet written).</summary>
    Cached,

    /// <summary>In the backend.</summary>
    Released,

    /// <summary>To be removed from the backend at its due time.</summary>
    Deleting,
}

/// <summary>One cloud object as the index knows it.</summary>
internal sealed record CacheBlock
{
    public long Id { get; init; }

    public required ObjectName ObjectName { get; init; }

    /// <summary>The record it belongs to; null for a dummy.</summary>
    public string? Handle { get; init; }

    public int BlockIndex { get; init; }

    public required long Length { get; init; }

    public required BlockKind Kind { get; init; }

    public required BlockState State { get; init; }

    public required DateTimeOffset AdmittedAt { get; init; }

    /// <summary>Cached: the schedule's deadline. Deleting: when to delete. Released: when it expires (dummies and retired blocks; real blocks never).</summary>
    public required DateTimeOffset DueAt { get; init; }

    /// <summary>The retrieval group it was released into; null until released.</summary>
    public long? GroupId { get; init; }

    /// <summary>Whether its stored bytes carry the object mask (every object put since index v7; older ones do not).</summary>
    public bool Masked { get; init; } = true;

    /// <summary>How often the backend refused it for good; a refused block waits in quarantine until <see cref="RetryAt"/>.</summary>
    public int Refusals { get; init; }

    /// <summary>While quarantined: when it may take a slot again.</summary>
    public DateTimeOffset? RetryAt { get; init; }

    /// <summary>A real block of a record, waiting in the cache under a fresh random name.</summary>
    public static CacheBlock Waiting(string handle, int blockIndex, long length, DateTimeOffset admittedAt, DateTimeOffset dueAt) => new()
    {
        ObjectName = ObjectName.NewRandom(),
        Handle = handle,
        BlockIndex = blockIndex,
        Length = length,
        Kind = BlockKind.Real,
        State = BlockState.Cached,
        AdmittedAt = admittedAt,
        DueAt = dueAt,
    };
}

/// <summary>
/// The blocks table (index schema v3), in the same SQLite database as the records. Lookups of a
/// record's blocks name the handle index explicitly: left to itself SQLite picks the state index,
/// which makes every release scan all waiting blocks (quadratic with a large backlog).
/// </summary>
internal sealed class BlockIndex(RecordIndex records)
{
    private const string NeverText = "9999-12-31T23:59:59.9999999Z";

    /// <summary>The due time of something that is never due.</summary>
    public static readonly DateTimeOffset Never = DateTimeOffset.MaxValue;

    public static async Task<long> InsertAsync(SqliteConnection connection, SqliteTransaction? transaction, CacheBlock block) =>
        await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO blocks (object_name, handle, block_index, length, kind, state, admitted_at, due_at, masked)
            VALUES (@ObjectName, @Handle, @BlockIndex, @Length, @Kind, @State, @AdmittedAt, @DueAt, @Masked);
            SELECT last_insert_rowid();
            """,
            new
            {
                ObjectName = block.ObjectName.ToString(),
                block.Handle,
                block.BlockIndex,
                block.Length,
                Kind = block.Kind.ToString(),
                State = block.State.ToString(),
                AdmittedAt = Text(block.AdmittedAt),
                DueAt = Text(block.DueAt),
                Masked = block.Masked ? 1 : 0,
            },
            transaction).ConfigureAwait(false);

    public async Task<long> InsertAsync(CacheBlock block)
    {
        await using var connection = records.Open();
        return await InsertAsync(connection, null, block).ConfigureAwait(false);
    }

    /// <summary>Gives a waiting dummy another name (an object that takes its slot, ICoverPayloadSource).</summary>
    public async Task RenameCachedDummyAsync(long id, ObjectName name)
    {
        await using var connection = records.Open();
        await connection.ExecuteAsync(
            "UPDATE blocks SET object_name = @name WHERE id = @id AND kind = 'Dummy' AND state = 'Cached'",
            new { id, name = name.ToString() }).ConfigureAwait(false);
    }

    /// <summary>
    /// Schedules the deletion of the released objects with these names (a cover source's objects it
    /// no longer needs: old backup generations, in renamed dummies' rows; only dummy rows, so no real
    /// block could ever be taken), each at its own
    /// <paramref name="deleteAt"/> time, in one transaction; the deletion sweep removes them then, as
    /// it removes a deleted record's blocks. A name no row carries (never put, or deleted already) and
    /// a row already being deleted are left alone, so scheduling twice changes nothing. Returns how
    /// many rows were scheduled.
    /// </summary>
    public async Task<int> ScheduleDeletionAsync(IReadOnlyCollection<ObjectName> names, Func<DateTimeOffset> deleteAt)
    {
        await using var connection = records.Open();
        await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        var scheduled = 0;
        foreach (var name in names)
        {
            var id = await connection.ExecuteScalarAsync<long?>(
                "SELECT id FROM blocks WHERE object_name = @name AND state = 'Released' AND kind = 'Dummy'", new { name = name.ToString() }, transaction).ConfigureAwait(false);
            if (id is null)
            {
                continue;
            }

            scheduled += await connection.ExecuteAsync(
                "UPDATE blocks SET state = 'Deleting', due_at = @due WHERE id = @id", new { id, due = Text(deleteAt()) }, transaction).ConfigureAwait(false);
        }

        await transaction.CommitAsync().ConfigureAwait(false);
        return scheduled;
    }

    /// <summary>Whether a block row already carries this object name.</summary>
    public async Task<bool> IsNamedAsync(ObjectName name)
    {
        await using var connection = records.Open();
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM blocks WHERE object_name = @name", new { name = name.ToString() }).ConfigureAwait(false) > 0;
    }

    public async Task<CacheBlock?> FindAsync(long id)
    {
        await using var connection = records.Open();
        var row = await connection.QuerySingleOrDefaultAsync<Row>("SELECT * FROM blocks WHERE id = @id", new { id }).ConfigureAwait(false);
        return row?.ToBlock();
    }

    /// <summary>A record's blocks in order.</summary>
    public async Task<IReadOnlyList<CacheBlock>> OfRecordAsync(string handle)
    {
        await using var connection = records.Open();
        var rows = await connection.QueryAsync<Row>("SELECT * FROM blocks WHERE handle = @handle AND kind = 'Real' ORDER BY block_index", new { handle }).ConfigureAwait(false);
        return rows.Select(r => r.ToBlock()).ToList();
    }

    /// <summary>
    /// The retrieval groups of the released blocks of this study's records other than
    /// <paramref name="except"/>: what a request's padding leaves out, so that a later request for
    /// the study does not read as wanted what this one read as padding.
    /// </summary>
    public async Task<IReadOnlyList<long>> GroupsOfStudyAsync(string studyInstanceUid, IReadOnlyCollection<string> except)
    {
        await using var connection = records.Open();
        var groups = await connection.QueryAsync<long>(
            "SELECT DISTINCT b.group_id FROM blocks b JOIN records r ON r.handle = b.handle WHERE r.study_instance_uid = @studyInstanceUid AND b.kind = 'Real' AND b.state = 'Released' AND b.group_id IS NOT NULL",
            new { studyInstanceUid }).ConfigureAwait(false);
        if (except.Count == 0)
        {
            return groups.ToList();
        }

        var own = (await connection.QueryAsync<long>(
            "SELECT DISTINCT group_id FROM blocks WHERE handle IN @except AND group_id IS NOT NULL",
            new { except }).ConfigureAwait(false)).ToHashSet();
        return groups.Where(g => !own.Contains(g)).ToList();
    }

    public async Task<IReadOnlyList<CacheBlock>> InStateAsync(BlockState state, BlockKind kind)
    {
        await using var connection = records.Open();
        var rows = await connection.QueryAsync<Row>(
            "SELECT * FROM blocks WHERE state = @state AND kind = @kind ORDER BY id",
            new { state = state.ToString(), kind = kind.ToString() }).ConfigureAwait(false);
        return rows.Select(r => r.ToBlock()).ToList();
    }

    /// <summary>
    /// Marks a block as in the backend. For a dummy, <paramref name="expiresAt"/> is when it is to be
    /// deleted (null: never). Returns true when this was the last cached block of a cached record,
    /// which is then stored (and its cache file may go).
    /// </summary>
    public async Task<bool> MarkReleasedAsync(CacheBlock block, DateTimeOffset now, DateTimeOffset? expiresAt, long? groupId = null)
    {
        await using var connection = records.Open();
        await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        await connection.ExecuteAsync(
            "UPDATE blocks SET state = 'Released', released_at = @now, due_at = @due, group_id = @groupId WHERE id = @Id AND state = 'Cached'",
            new { block.Id, now = Text(now), due = block.Kind == BlockKind.Dummy && expiresAt is { } e ? Text(e) : NeverText, groupId },
            transaction).ConfigureAwait(false);
        var stored = block.Handle is not null && await connection.ExecuteAsync(
            """
            UPDATE records SET state = 'Stored'
            WHERE handle = @Handle AND state = 'Cached'
              AND NOT EXISTS (SELECT 1 FROM blocks INDEXED BY ix_blocks_handle WHERE handle = @Handle AND state = 'Cached')
            """,
            new { block.Handle },
            transaction).ConfigureAwait(false) == 1;
        await transaction.CommitAsync().ConfigureAwait(false);
        return stored;
    }

    /// <summary>Cached records whose blocks have all been released (a crash came between the last release and the state change).</summary>
    public async Task<IReadOnlyList<string>> CompletedCachedRecordsAsync()
    {
        await using var connection = records.Open();
        await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        var handles = (await connection.QueryAsync<string>(
            """
            SELECT handle FROM records r WHERE state = 'Cached'
              AND NOT EXISTS (SELECT 1 FROM blocks b INDEXED BY ix_blocks_handle WHERE b.handle = r.handle AND b.state = 'Cached')
            """,
            transaction: transaction).ConfigureAwait(false)).ToList();
        await connection.ExecuteAsync("UPDATE records SET state = 'Stored' WHERE handle IN @handles", new { handles }, transaction).ConfigureAwait(false);
        await transaction.CommitAsync().ConfigureAwait(false);
        return handles;
    }

    /// <summary>
    /// Removes a record from every answer, in one transaction: its row goes (and with it the wrapped
    /// data key, so its ciphertext can never be read again), its cached blocks go (they never reached
    /// the cloud; their ids are returned so the schedule forgets them), and its released blocks either
    /// stay in the cloud as retired decoys, expiring like any cover object at <paramref name="deleteAt"/>
    /// (<paramref name="erase"/> false: the cloud sees nothing), or are scheduled for deletion at
    /// <paramref name="deleteAt"/> times (<paramref name="erase"/> true).
    /// Returns null if no acknowledged record has that handle.
    /// </summary>
    public async Task<IReadOnlyList<long>?> DeleteRecordAsync(string handle, bool erase, Func<DateTimeOffset> deleteAt)
    {
        await using var connection = records.Open();
        await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        if (await connection.ExecuteAsync("DELETE FROM records WHERE handle = @handle AND state IN ('Stored', 'Cached')", new { handle }, transaction).ConfigureAwait(false) != 1)
        {
            return null;
        }

        var blocks = (await connection.QueryAsync<Row>("SELECT * FROM blocks WHERE handle = @handle", new { handle }, transaction).ConfigureAwait(false)).Select(r => r.ToBlock()).ToList();
        var cached = blocks.Where(b => b.State == BlockState.Cached).Select(b => b.Id).ToList();
        await connection.ExecuteAsync("DELETE FROM blocks WHERE id IN @cached", new { cached }, transaction).ConfigureAwait(false);
        foreach (var block in blocks.Where(b => b.State == BlockState.Released))
        {
            await connection.ExecuteAsync(
                erase
                    ? "UPDATE blocks SET state = 'Deleting', due_at = @due WHERE id = @Id"
                    : "UPDATE blocks SET kind = 'Retired', handle = NULL, due_at = @due WHERE id = @Id",
                new { block.Id, due = Text(deleteAt()) },
                transaction).ConfigureAwait(false);
        }

        await transaction.CommitAsync().ConfigureAwait(false);
        return cached;
    }

    /// <summary>
    /// Blocks to delete from the backend now: of deleted records, and expired dummies. Both halves
    /// are ranges of the (state, due_at) index: released real blocks carry a due time that never comes.
    /// </summary>
    public async Task<IReadOnlyList<CacheBlock>> DueForDeletionAsync(DateTimeOffset now, int limit)
    {
        await using var connection = records.Open();
        var rows = await connection.QueryAsync<Row>(
            """
            SELECT * FROM (
                SELECT * FROM blocks WHERE state = 'Deleting' AND due_at <= @now
                UNION ALL
                SELECT * FROM blocks WHERE state = 'Released' AND due_at <= @now AND kind IN ('Dummy', 'Retired'))
            ORDER BY due_at LIMIT @limit
            """,
            new { now = Text(now), limit }).ConfigureAwait(false);
        return rows.Select(r => r.ToBlock()).ToList();
    }

    /// <summary>Every released object of the given retrieval groups (the members a read of any of them reads).</summary>
    public async Task<IReadOnlyList<CacheBlock>> GroupMembersAsync(IReadOnlyCollection<long> groups)
    {
        await using var connection = records.Open();
        var rows = await connection.QueryAsync<Row>("SELECT * FROM blocks WHERE group_id IN @groups AND state = 'Released'", new { groups }).ConfigureAwait(false);
        return rows.Select(r => r.ToBlock()).ToList();
    }

    /// <summary>The last group in use and how many objects it has (to go on filling it after a restart).</summary>
    public async Task<(long Group, int Members)> LastGroupAsync()
    {
        await using var connection = records.Open();
        var last = await connection.ExecuteScalarAsync<long?>("SELECT MAX(group_id) FROM blocks").ConfigureAwait(false);
        return last is { } group
            ? (group, await connection.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM blocks WHERE group_id = @group", new { group }).ConfigureAwait(false))
            : (0, 0);
    }

    /// <summary>Released objects without a group (released before index v4), in random order.</summary>
    public async Task<IReadOnlyList<long>> UngroupedAsync()
    {
        await using var connection = records.Open();
        return (await connection.QueryAsync<long>("SELECT id FROM blocks WHERE state = 'Released' AND group_id IS NULL ORDER BY RANDOM()").ConfigureAwait(false)).ToList();
    }

    public async Task SetGroupAsync(long id, long group)
    {
        await using var connection = records.Open();
        await connection.ExecuteAsync("UPDATE blocks SET group_id = @group WHERE id = @id", new { id, group }).ConfigureAwait(false);
    }

    /// <summary>
    /// Moves a stored record to fresh ciphertext (after a read): in one transaction the record takes
    /// its new envelope index and goes back to the cache, its released blocks become retired decoys
    /// expiring at <paramref name="retiredExpiresAt"/>, and its new blocks are inserted. Returns
    /// their ids, or null if the record changed meanwhile (deleted, or relocated by another read).
    /// </summary>
    public async Task<IReadOnlyList<long>?> RelocateAsync(string handle, ObjectName from, ObjectName to, long storedLength, IReadOnlyList<CacheBlock> newBlocks, Func<DateTimeOffset> retiredExpiresAt)
    {
        await using var connection = records.Open();
        await using var transaction = connection.BeginTransaction();
        if (await connection.ExecuteAsync(
            "UPDATE records SET object_name = @to, stored_length = @storedLength, state = 'Cached' WHERE handle = @handle AND object_name = @from AND state = 'Stored'",
            new { handle, from = from.ToString(), to = to.ToString(), storedLength },
            transaction).ConfigureAwait(false) != 1)
        {
            return null;
        }

        var old = (await connection.QueryAsync<long>("SELECT id FROM blocks INDEXED BY ix_blocks_handle WHERE handle = @handle AND kind = 'Real'", new { handle }, transaction).ConfigureAwait(false)).ToList();
        foreach (var id in old)
        {
            await connection.ExecuteAsync("UPDATE blocks SET kind = 'Retired', due_at = @due WHERE id = @id", new { id, due = Text(retiredExpiresAt()) }, transaction).ConfigureAwait(false);
        }

        var ids = new List<long>();
        foreach (var block in newBlocks)
        {
            ids.Add(await InsertAsync(connection, transaction, block).ConfigureAwait(false));
        }

        transaction.Commit();
        return ids;
    }

    /// <summary>
    /// How many records still have a real block stored without the object mask (put before index
    /// v7): the object-format migration's queue, read from the index itself, so a crash loses nothing.
    /// </summary>
    public async Task<long> LegacyRecordCountAsync()
    {
        await using var connection = records.Open();
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(DISTINCT handle) FROM blocks WHERE kind = 'Real' AND masked = 0").ConfigureAwait(false);
    }

    /// <summary>
    /// The next stored record with an unmasked real block, leaving out <paramref name="skipped"/>
    /// (failed in this run); null when none is left. A record still partly waiting in the upload
    /// cache is not taken: its blocks are not all readable from the cloud yet.
    /// </summary>
    public async Task<string?> NextLegacyRecordAsync(IReadOnlyCollection<string> skipped)
    {
        await using var connection = records.Open();
        return await connection.ExecuteScalarAsync<string?>(
            """
            SELECT r.handle FROM records r
            WHERE r.state = 'Stored' AND r.handle NOT IN @skipped
              AND EXISTS (SELECT 1 FROM blocks b INDEXED BY ix_blocks_handle WHERE b.handle = r.handle AND b.kind = 'Real' AND b.masked = 0)
            ORDER BY r.handle LIMIT 1
            """,
            new { skipped }).ConfigureAwait(false);
    }

    /// <summary>Puts a block the backend refused into quarantine: counted, and kept out of the slots until <paramref name="retryAt"/> (a restart keeps it there).</summary>
    public async Task QuarantineAsync(long id, int refusals, DateTimeOffset retryAt)
    {
        await using var connection = records.Open();
        await connection.ExecuteAsync("UPDATE blocks SET refusals = @refusals, retry_at = @at WHERE id = @id", new { id, refusals, at = Text(retryAt) }).ConfigureAwait(false);
    }

    /// <summary>Real blocks waiting in quarantine (refused by the backend, not yet released).</summary>
    public async Task<int> QuarantinedCountAsync()
    {
        await using var connection = records.Open();
        return await connection.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM blocks WHERE state = 'Cached' AND refusals > 0").ConfigureAwait(false);
    }

    public async Task RemoveAsync(long id)
    {
        await using var connection = records.Open();
        await connection.ExecuteAsync("DELETE FROM blocks WHERE id = @id", new { id }).ConfigureAwait(false);
    }

    /// <summary>Count of blocks by kind and state (for health and reports).</summary>
    public async Task<IReadOnlyDictionary<(BlockKind Kind, BlockState State), long>> CountsAsync()
    {
        await using var connection = records.Open();
        var rows = await connection.QueryAsync<(string Kind, string State, long Count)>("SELECT kind, state, COUNT(*) FROM blocks GROUP BY kind, state").ConfigureAwait(false);
        return rows.ToDictionary(r => (Enum.Parse<BlockKind>(r.Kind), Enum.Parse<BlockState>(r.State)), r => r.Count);
    }

    internal static string Text(DateTimeOffset at) => at.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

#pragma warning disable IDE1006 // column names as stored
    private sealed class Row
    {
        public long id { get; set; }
        public string object_name { get; set; } = "";
        public string? handle { get; set; }
        public long block_index { get; set; }
        public long length { get; set; }
        public string kind { get; set; } = "";
        public string state { get; set; } = "";
        public string admitted_at { get; set; } = "";
        public string due_at { get; set; } = "";
        public long? group_id { get; set; }
        public long masked { get; set; }
        public long refusals { get; set; }
        public string? retry_at { get; set; }

        public CacheBlock ToBlock() => new()
        {
            Id = id,
            ObjectName = ObjectName.Parse(object_name),
            Handle = handle,
            BlockIndex = (int)block_index,
            Length = length,
            Kind = Enum.Parse<BlockKind>(kind),
            State = Enum.Parse<BlockState>(state),
            AdmittedAt = DateTimeOffset.Parse(admitted_at, CultureInfo.InvariantCulture),
            DueAt = DateTimeOffset.Parse(due_at, CultureInfo.InvariantCulture),
            GroupId = group_id,
            Masked = masked != 0,
            Refusals = (int)refusals,
            RetryAt = retry_at is null ? null : DateTimeOffset.Parse(retry_at, CultureInfo.InvariantCulture),
        };
    }
#pragma warning restore IDE1006
}
