using TrustedProxy.Records;
using TrustedProxy.Storage;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Tests.UploadCache;

public sealed class BlockIndexTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset FarFuture = Now.AddYears(100);
    private readonly TemporaryDirectory _directory = new();

    [Fact]
    public async Task TheLastReleasedBlock_StoresItsRecord()
    {
        var (records, blocks) = Open();
        var stored = await InsertAsync(records, "r1", 3);

        Assert.False(await blocks.MarkReleasedAsync(stored[0], Now, null));
        Assert.False(await blocks.MarkReleasedAsync(stored[2], Now, null));
        Assert.Equal(RecordState.Cached, (await records.FindAsync("r1"))!.State);
        Assert.True(await blocks.MarkReleasedAsync(stored[1], Now, null));
        Assert.Equal(RecordState.Stored, (await records.FindAsync("r1"))!.State);
    }

    [Fact]
    public async Task ReleasedRealBlocks_NeverComeDueForDeletion_ExpiredDummiesDo()
    {
        var (records, blocks) = Open();
        foreach (var block in await InsertAsync(records, "r1", 2))
        {
            await blocks.MarkReleasedAsync(block, Now, expiresAt: Now);
        }

        var dummy = Block(null, 0) with { Kind = BlockKind.Dummy };
        dummy = dummy with { Id = await blocks.InsertAsync(dummy) };
        await blocks.MarkReleasedAsync(dummy, Now, expiresAt: Now.AddDays(30));

        Assert.Empty(await blocks.DueForDeletionAsync(Now.AddDays(29), 100));
        Assert.Equal([dummy.ObjectName], (await blocks.DueForDeletionAsync(FarFuture, 100)).Select(b => b.ObjectName));
    }

    [Fact]
    public async Task ErasingARecord_DropsItsCachedBlocks_AndSchedulesItsReleasedOnes()
    {
        var (records, blocks) = Open();
        var inserted = await InsertAsync(records, "r1", 3);
        await blocks.MarkReleasedAsync(inserted[0], Now, null);

        var dropped = await blocks.DeleteRecordAsync("r1", erase: true, () => Now.AddMinutes(5));

        Assert.Equal([inserted[1].Id, inserted[2].Id], dropped!.Order());
        Assert.Null(await records.FindAsync("r1"));
        Assert.Empty(await blocks.DueForDeletionAsync(Now.AddMinutes(4), 100));
        Assert.Equal([inserted[0].ObjectName], (await blocks.DueForDeletionAsync(Now.AddMinutes(5), 100)).Select(b => b.ObjectName));
        Assert.Null(await blocks.DeleteRecordAsync("r1", erase: true, () => Now));
    }

    [Fact]
    public async Task DeletingARecord_WithoutErasing_LeavesItsReleasedBlocksAsDecoysNoLongerLinkedToIt()
    {
        var (records, blocks) = Open();
        var inserted = await InsertAsync(records, "r1", 2);
        await blocks.MarkReleasedAsync(inserted[0], Now, null);

        var dropped = await blocks.DeleteRecordAsync("r1", erase: false, () => BlockIndex.Never);

        Assert.Equal([inserted[1].Id], dropped!);
        Assert.Null(await records.FindAsync("r1"));
        Assert.Empty(await blocks.OfRecordAsync("r1"));
        var decoy = (await blocks.FindAsync(inserted[0].Id))!;
        Assert.Equal((BlockKind.Retired, BlockState.Released, null), (decoy.Kind, decoy.State, decoy.Handle));
        Assert.Empty(await blocks.DueForDeletionAsync(FarFuture, 100));
    }

    [Fact]
    public async Task AQuarantinedBlock_KeepsItsRefusalsAndRetryTime()
    {
        var (records, blocks) = Open();
        var inserted = await InsertAsync(records, "r1", 2);

        await blocks.QuarantineAsync(inserted[1].Id, 3, Now.AddMinutes(7));

        var block = (await blocks.FindAsync(inserted[1].Id))!;
        Assert.Equal((3, Now.AddMinutes(7)), (block.Refusals, block.RetryAt));
        Assert.Equal(1, await blocks.QuarantinedCountAsync());
        Assert.Equal((0, null), ((await blocks.FindAsync(inserted[0].Id))!.Refusals, (await blocks.FindAsync(inserted[0].Id))!.RetryAt));
    }

    [Fact]
    public async Task NewBlocksAreMasked_BlocksReleasedBeforeVersion7AreNot_AndWaitingOnesWillBe()
    {
        var path = _directory.File("proxy.db");
        var old = new RecordIndex(path, migrateTo: 6);
        var oldBlocks = new BlockIndex(old);
        await using (var connection = old.Open())
        {
            // What a v6 proxy wrote: no mask column.
            await Dapper.SqlMapper.ExecuteAsync(connection, """
                INSERT INTO blocks (object_name, handle, block_index, length, kind, state, admitted_at, due_at)
                VALUES ('00000000000000000000000000000001', NULL, 0, 4096, 'Dummy', 'Released', '2026-01-01T00:00:00.0000000Z', '9999-12-31T23:59:59.9999999Z'),
                       ('00000000000000000000000000000002', NULL, 0, 4096, 'Dummy', 'Cached', '2026-01-01T00:00:00.0000000Z', '2026-01-01T00:00:00.0000000Z')
                """);
        }

        var migrated = new RecordIndex(path);
        var blocks = new BlockIndex(migrated);
        var all = await blocks.InStateAsync(BlockState.Released, BlockKind.Dummy);
        Assert.False(Assert.Single(all).Masked);
        Assert.True(Assert.Single(await blocks.InStateAsync(BlockState.Cached, BlockKind.Dummy)).Masked);
        var fresh = Block(null, 0) with { Kind = BlockKind.Dummy };
        Assert.True((await blocks.FindAsync(await blocks.InsertAsync(fresh)))!.Masked);
    }

    [Fact]
    public async Task RecordsOfSchemaVersion2_BecomeOneReleasedBlockEach_UnderTheirOldName_ThatNeverExpires()
    {
        var path = _directory.File("proxy.db");
        var old = new RecordIndex(path, migrateTo: 2);
        var entry = Entry("legacy", RecordState.Stored);
        await old.InsertAsync(entry);

        var migrated = new RecordIndex(path);
        var blocks = new BlockIndex(migrated);

        Assert.Equal(RecordIndex.LatestSchemaVersion, migrated.SchemaVersion);
        var block = Assert.Single(await blocks.OfRecordAsync("legacy"));
        Assert.Equal(entry.ObjectName, block.ObjectName);
        Assert.Equal(BlockState.Released, block.State);
        Assert.Equal(entry.StoredLength, block.Length);
        Assert.Empty(await blocks.DueForDeletionAsync(FarFuture, 100));
    }

    public void Dispose() => _directory.Dispose();

    private (RecordIndex Records, BlockIndex Blocks) Open()
    {
        var records = new RecordIndex(_directory.File("proxy.db"));
        return (records, new BlockIndex(records));
    }

    private static async Task<IReadOnlyList<CacheBlock>> InsertAsync(RecordIndex records, string handle, int count)
    {
        var blocks = Enumerable.Range(0, count).Select(i => Block(handle, i)).ToList();
        var ids = await records.InsertAsync(Entry(handle, RecordState.Cached), blocks);
        return blocks.Select((b, i) => b with { Id = ids[i] }).ToList();
    }

    private static CacheBlock Block(string? handle, int index) => new()
    {
        ObjectName = ObjectName.NewRandom(),
        Handle = handle,
        BlockIndex = index,
        Length = 4096,
        Kind = BlockKind.Real,
        State = BlockState.Cached,
        AdmittedAt = Now,
        DueAt = Now.AddHours(1),
    };

    private static RecordEntry Entry(string handle, RecordState state) => new()
    {
        Handle = handle,
        ObjectName = ObjectName.NewRandom(),
        WrappedKey = new byte[61],
        TransferSyntaxUid = "1.2.840.10008.1.2.1",
        PlaintextLength = 1000,
        StoredLength = 1100,
        ContentSha256 = new byte[32],
        OriginOrganisation = "Test",
        State = state,
        CreatedAt = Now,
    };
}
