using System.Globalization;
using Dapper;
using Microsoft.Data.Sqlite;
using TrustedProxy.Records;
using TrustedProxy.Storage;

namespace TrustedProxy.UploadCache;

/// <summary>Whether a cloud object carries part of a record or is cover traffic.</summary>
public enum BlockKind
{
    Real,
    Dummy,
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

    /// <summary>Cached: the schedule's deadline. Deleting: when to delete. Released: when it expires (only dummies do; real blocks never).</summary>
    public required DateTimeOffset DueAt { get; init; }
}

/// <summary>
/// The blocks table (index schema v3), in the same SQLite database as the records. Lookups of a
/// record's blocks name the handle index explicitly: left to itself SQLite picks the state index,
/// which makes every release scan all waiting blocks (quadratic with a large backlog).
/// </summary>
internal sealed class BlockIndex(RecordIndex records)
{
    private const string NeverText = "9999-12-31T23:59:59.9999999Z";

    public static async Task<long> InsertAsync(SqliteConnection connection, SqliteTransaction? transaction, CacheBlock block) =>
        await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO blocks (object_name, handle, block_index, length, kind, state, admitted_at, due_at)
            VALUES (@ObjectName, @Handle, @BlockIndex, @Length, @Kind, @State, @AdmittedAt, @DueAt);
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
            },
            transaction).ConfigureAwait(false);

    public async Task<long> InsertAsync(CacheBlock block)
    {
        await using var connection = records.Open();
        return await InsertAsync(connection, null, block).ConfigureAwait(false);
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
        var rows = await connection.QueryAsync<Row>("SELECT * FROM blocks WHERE handle = @handle ORDER BY block_index", new { handle }).ConfigureAwait(false);
        return rows.Select(r => r.ToBlock()).ToList();
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
    public async Task<bool> MarkReleasedAsync(CacheBlock block, DateTimeOffset now, DateTimeOffset? expiresAt)
    {
        await using var connection = records.Open();
        await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        await connection.ExecuteAsync(
            "UPDATE blocks SET state = 'Released', released_at = @now, due_at = @due WHERE id = @Id AND state = 'Cached'",
            new { block.Id, now = Text(now), due = block.Kind == BlockKind.Dummy && expiresAt is { } e ? Text(e) : NeverText },
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
    /// Removes a record from every answer, in one transaction: its row goes, its cached blocks go
    /// (they never reached the cloud; their ids are returned so the schedule forgets them) and its
    /// released blocks are scheduled for deletion at <paramref name="deleteAt"/> times.
    /// Returns null if no acknowledged record has that handle.
    /// </summary>
    public async Task<IReadOnlyList<long>?> DeleteRecordAsync(string handle, Func<DateTimeOffset> deleteAt)
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
                "UPDATE blocks SET state = 'Deleting', due_at = @due WHERE id = @Id",
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
                SELECT * FROM blocks WHERE state = 'Released' AND due_at <= @now AND kind = 'Dummy')
            ORDER BY due_at LIMIT @limit
            """,
            new { now = Text(now), limit }).ConfigureAwait(false);
        return rows.Select(r => r.ToBlock()).ToList();
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
        };
    }
#pragma warning restore IDE1006
}
