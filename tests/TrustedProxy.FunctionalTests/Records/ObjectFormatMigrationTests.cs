using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using TrustedProxy.Audit;
using TrustedProxy.Client;
using TrustedProxy.Crypto;
using TrustedProxy.FunctionalTests.UploadCache;
using TrustedProxy.Policy;
using TrustedProxy.Records;
using TrustedProxy.UploadCache;

namespace TrustedProxy.FunctionalTests.Records;

/// <summary>
/// Records a proxy of before index v7 left in the cloud (objects without the mask, the envelope's
/// header in plain sight) read bit-exact as they are, and the administrators' migration moves them,
/// through the ordinary read path and the upload schedule, to masked objects.
/// </summary>
public sealed class ObjectFormatMigrationTests
{
    private const int BlockSize = 16 * 1024;

    private static readonly string[] CorpusFiles = ["CT_small.dcm", "MR_small.dcm"];

    /// <summary>
    /// Releases within a second (a pool of one), small blocks so a corpus file spans several, no
    /// relocation after ordinary reads (so that only the migration moves anything) and no hold before
    /// a relocated copy may leave, and a migration pace that does not make the test wait.
    /// </summary>
    private static Dictionary<string, string?> Settings => new(UploadCacheTests.Fast)
    {
        ["TrustedProxy:UploadCache:BlockSizeBytes"] = BlockSize.ToString(CultureInfo.InvariantCulture),
        ["TrustedProxy:UploadCache:PoolThreshold"] = "1",
        ["TrustedProxy:ObliviousRetrieval:RelocateAfterRead"] = "false",
        ["TrustedProxy:ObliviousRetrieval:RelocationHoldSeconds"] = "0",
        ["TrustedProxy:ObjectFormat:MigrationRecordsPerHour"] = "36000",
    };

    [Fact]
    public async Task ARecordStoredBeforeTheMask_ReadsBitExact_AndAfterTheMigrationIsStoredMasked_AndASecondRunFindsNothing()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: Settings);
        var records = await UploadLegacyRecordsAsync(proxy);
        var blocks = proxy.Services.GetRequiredService<BlockIndex>();
        var admin = proxy.Client(ProxyRole.Admin);

        // Before: read as they are (a read does not move them: RelocateAfterRead is off), the header in the clear.
        foreach (var (handle, file) in records)
        {
            Assert.Equal(file, await FetchAsync(proxy, handle));
            var stored = await blocks.OfRecordAsync(handle);
            Assert.All(stored, b => Assert.False(b.Masked));
            Assert.True(StartsWithHeader(await proxy.ReadCloudObjectAsync(stored[0].ObjectName)), "the legacy record's first object shows the envelope header");
        }

        Assert.Equal(records.Count, (await admin.ObjectFormatMigrationAsync()).LegacyRecords);
        var oldBlocks = await BlockIdsAsync(proxy, records.Keys);

        var started = await admin.StartObjectFormatMigrationAsync();
        Assert.True(started.Running);
        Assert.Equal(36000, started.RecordsPerHour);
        var finished = await WaitForRunAsync(admin);
        await UploadCacheTests.WaitUntilReleasedAsync(proxy);

        Assert.Equal((0L, (long)records.Count, 0L), (finished.LegacyRecords, finished.Migrated, finished.Failed));
        foreach (var (handle, file) in records)
        {
            var moved = await blocks.OfRecordAsync(handle);
            Assert.NotEmpty(moved);
            Assert.All(moved, b => Assert.True(b.Masked && b.State == BlockState.Released && !oldBlocks.Contains(b.Id), $"block {b.BlockIndex} of {handle}: masked {b.Masked}, {b.State}"));
            foreach (var block in moved)
            {
                Assert.False(StartsWithHeader(await proxy.ReadCloudObjectAsync(block.ObjectName)), $"block {block.BlockIndex} of {handle} shows the envelope header");
            }

            Assert.Equal(RecordState.Stored, (await proxy.Services.GetRequiredService<RecordIndex>().FindAsync(handle))!.State);
            Assert.Equal(file, await FetchAsync(proxy, handle));
        }

        var audit = AuditEntries(proxy, "record");
        Assert.Equal(records.Keys.Order(), audit.Select(e => e["data"]!["record"]!.GetValue<string>()).Order());
        Assert.All(audit, e => Assert.Equal(AuditActor.ProxyKind, e["actor"]!["kind"]!.GetValue<string>()));
        var start = Assert.Single(AuditEntries(proxy, "start"));
        Assert.Equal(("admin", records.Count), (start["actor"]!["role"]!.GetValue<string>(), start["data"]!["legacyRecords"]!.GetValue<int>()));

        // A second run: nothing left, nothing read, nothing moved.
        var movedBlocks = await BlockIdsAsync(proxy, records.Keys);
        var again = await admin.StartObjectFormatMigrationAsync();
        Assert.Equal(0, again.LegacyRecords);
        var second = await WaitForRunAsync(admin);
        Assert.Equal((0L, 0L, 0L), (second.LegacyRecords, second.Migrated, second.Failed));
        Assert.Equal(movedBlocks, await BlockIdsAsync(proxy, records.Keys));
        Assert.Equal(records.Count, AuditEntries(proxy, "record").Count);
    }

    [Theory]
    [InlineData(ProxyRole.Consumer)]
    [InlineData(ProxyRole.Producer)]
    [InlineData(ProxyRole.Compliance)]
    public async Task TheMigration_AskedByAnotherRoleThanAdmin_Is403ProblemJson_AndChangesNothing(ProxyRole role)
    {
        await using var proxy = await ProxyHost.StartAsync(settings: Settings);
        var records = await UploadLegacyRecordsAsync(proxy);
        var before = await BlockIdsAsync(proxy, records.Keys);
        var client = proxy.Client(role);

        foreach (var method in new[] { HttpMethod.Post, HttpMethod.Get })
        {
            using var response = await client.SendAsync(new HttpRequestMessage(method, "api/v1/admin/object-format/migrate"));
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("urn:trustedproxy:problem:forbidden", problem.GetProperty("type").GetString());
        }

        // Had a run started, the first record would be read and moved within milliseconds.
        await Task.Delay(TimeSpan.FromSeconds(1));
        var progress = await proxy.Client(ProxyRole.Admin).ObjectFormatMigrationAsync();
        Assert.Equal((false, (long)records.Count, 0L), (progress.Running, progress.LegacyRecords, progress.Migrated));
        Assert.Equal(before, await BlockIdsAsync(proxy, records.Keys));
        Assert.All(await AllBlocksAsync(proxy, records.Keys), b => Assert.False(b.Masked));
        Assert.Empty(AuditEntries(proxy, null));
    }

    [Fact]
    public async Task ARecordFailingVerification_IsLeftForTheNextRun_WhileTheOthersMove()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: Settings);
        var records = await UploadLegacyRecordsAsync(proxy);
        var (tampered, _) = records.First();
        // Byte 100 of the first block is ciphertext of the first segment (a padding byte would go unnoticed).
        var block = (await proxy.Services.GetRequiredService<BlockIndex>().OfRecordAsync(tampered))[0];
        var bytes = await proxy.ReadCloudObjectAsync(block.ObjectName);
        bytes[100] ^= 1;
        await proxy.OverwriteCloudObjectAsync(block.ObjectName, bytes);
        var admin = proxy.Client(ProxyRole.Admin);

        await admin.StartObjectFormatMigrationAsync();
        var finished = await WaitForRunAsync(admin);

        Assert.Equal((1L, records.Count - 1L, 1L), (finished.LegacyRecords, finished.Migrated, finished.Failed));
        Assert.All(await proxy.Services.GetRequiredService<BlockIndex>().OfRecordAsync(tampered), b => Assert.False(b.Masked));
        foreach (var (handle, _) in records.Skip(1))
        {
            Assert.All(await proxy.Services.GetRequiredService<BlockIndex>().OfRecordAsync(handle), b => Assert.True(b.Masked));
        }
    }

    [Fact]
    public async Task WithTheUploadCacheOff_TheMigrationIsRefusedWith409_ForThereIsNoScheduleToMoveThrough()
    {
        await using var proxy = await ProxyHost.StartAsync();

        var refused = await Assert.ThrowsAsync<TrustedProxyException>(() => proxy.Client(ProxyRole.Admin).StartObjectFormatMigrationAsync());

        Assert.Equal((409, "urn:trustedproxy:problem:migration-unavailable"), (refused.Status, refused.ProblemType));
        Assert.False((await proxy.Client(ProxyRole.Admin).ObjectFormatMigrationAsync()).Running);
    }

    [Fact]
    public async Task MigrateFormat_OnTheCommandLine_FollowsTheRunToTheEnd_AndAsAConsumerIsOneLineAndExit1()
    {
        await using var proxy = await ProxyHost.StartAsync(settings: Settings);
        var records = await UploadLegacyRecordsAsync(proxy);

        var refused = await CliProcess.RunAsync(proxy.Root, "records", "migrate-format", "--as", "consumer", "--server", proxy.BaseAddress.ToString());
        var run = await CliProcess.RunAsync(proxy.Root, "records", "migrate-format", "--as", "admin", "--wait", "--server", proxy.BaseAddress.ToString());
        var status = await CliProcess.RunAsync(proxy.Root, "records", "migrate-format", "--status", "--server", proxy.BaseAddress.ToString());

        Assert.Equal(1, refused.ExitCode);
        var line = Assert.Single(refused.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("tproxy: the proxy refused: ", line, StringComparison.Ordinal);
        Assert.Contains("403", line, StringComparison.Ordinal);
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Matches(@"^migrating: \d legacy record\(s\) left, \d moved and 0 failed in this run, at most 36000 an hour\n", run.Output);
        Assert.True(status.ExitCode == 0, status.Error);
        Assert.Equal($"nothing to migrate: every record is stored masked ({records.Count} moved in the last run)", status.Output.Trim());
        Assert.All(await AllBlocksAsync(proxy, records.Keys), b => Assert.True(b.Masked));
    }

    /// <summary>
    /// Uploads corpus files, lets them be released, then leaves them exactly as a proxy of before index
    /// v7 did: each real block's object without the mask, and the index saying so.
    /// </summary>
    internal static async Task<Dictionary<string, byte[]>> UploadLegacyRecordsAsync(ProxyHost proxy)
    {
        var records = new Dictionary<string, byte[]>();
        foreach (var name in CorpusFiles)
        {
            var file = await File.ReadAllBytesAsync(Path.Combine(DicomCorpus.TestFiles, name));
            records[(await proxy.Client(ProxyRole.Producer).UploadAsync(new MemoryStream(file))).Handle] = file;
        }

        await UploadCacheTests.WaitUntilReleasedAsync(proxy);
        var mask = proxy.Services.GetRequiredService<ObjectMask>();
        foreach (var block in await AllBlocksAsync(proxy, records.Keys))
        {
            Assert.Equal((BlockState.Released, true), (block.State, block.Masked));
            var bytes = await proxy.ReadCloudObjectAsync(block.ObjectName);
            mask.Apply(block.ObjectName, bytes);
            await proxy.OverwriteCloudObjectAsync(block.ObjectName, bytes);
            await using var connection = proxy.Services.GetRequiredService<RecordIndex>().Open();
            await using var command = connection.CreateCommand();
            command.CommandText = "UPDATE blocks SET masked = 0 WHERE id = $id";
            command.Parameters.AddWithValue("$id", block.Id);
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }

        return records;
    }

    internal static async Task<ObjectFormatMigrationProgress> WaitForRunAsync(TrustedProxyClient admin)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var progress = await admin.ObjectFormatMigrationAsync();
            if (!progress.Running)
            {
                return progress;
            }

            Assert.True(DateTime.UtcNow < deadline, $"still running: {progress}");
            await Task.Delay(100);
        }
    }

    private static bool StartsWithHeader(byte[] stored) => stored.AsSpan().StartsWith("TPX"u8);

    private static async Task<byte[]> FetchAsync(ProxyHost proxy, string handle)
    {
        using var back = new MemoryStream();
        await proxy.Client(ProxyRole.Consumer).FetchAsync(handle, back);
        return back.ToArray();
    }

    private static async Task<List<CacheBlock>> AllBlocksAsync(ProxyHost proxy, IEnumerable<string> handles)
    {
        var all = new List<CacheBlock>();
        foreach (var handle in handles)
        {
            all.AddRange(await proxy.Services.GetRequiredService<BlockIndex>().OfRecordAsync(handle));
        }

        return all;
    }

    private static async Task<List<long>> BlockIdsAsync(ProxyHost proxy, IEnumerable<string> handles) =>
        (await AllBlocksAsync(proxy, handles)).Select(b => b.Id).Order().ToList();

    /// <summary>The audit log's object-format-migration entries of one step (all of them: null).</summary>
    private static List<JsonObject> AuditEntries(ProxyHost proxy, string? step) =>
        File.ReadAllLines(Path.Combine(proxy.Root, "data", "audit", "audit.log"))
            .Select(l => (JsonObject)JsonNode.Parse(l)!)
            .Where(e => e["kind"]!.GetValue<string>() == AuditKinds.ObjectFormatMigration && (step is null || e["data"]!["step"]!.GetValue<string>() == step))
            .ToList();
}
