using System.Security.Cryptography;
using System.Text;
using Dapper;
using TrustedProxy.Audit;
using TrustedProxy.Crypto;
using TrustedProxy.KeyRotation;
using TrustedProxy.Records;
using TrustedProxy.Storage;

namespace TrustedProxy.Tests.KeyRotation;

/// <summary>
/// Key-encryption-key versions and the rotation that re-wraps every data key: real SQLite index on
/// disk, real keys derived from a master key, every data key checked against the one it was made with.
/// </summary>
public sealed class KeyRotationTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();
    private readonly byte[] _masterKey = RandomNumberGenerator.GetBytes(32);
    private readonly List<AuditEvent> _audit = [];

    private string IndexPath => _directory.File("proxy.db");

    [Fact]
    public void AWrappedKey_NamesItsVersion_OpensOnlyUnderIt_AndCannotBeRelabelled()
    {
        using var ring = ProxyKeyRing.FromBytes(_masterKey);
        using var key = DataKey.CreateRandom();
        const string handle = "aaaaaaaaaaaaaaaaaaaaaaaaaa";

        var one = ring.KeyEncryptionKeys.Wrap(key, handle, 1);
        var two = ring.KeyEncryptionKeys.Wrap(key, handle, 2);

        Assert.True(WrappedDataKey.TryReadVersion(one, out var v1) && v1 == 1);
        Assert.True(WrappedDataKey.TryReadVersion(two, out var v2) && v2 == 2);
        Assert.Equal(WrappedDataKey.Length, two.Length);
        using (var back = ring.KeyEncryptionKeys.Unwrap(two, handle))
        {
            Assert.Equal(key.Span.ToArray(), back.Span.ToArray());
        }

        // Relabelling version 2's blob as version 1 neither opens under 1 nor 2.
        var relabelled = two.ToArray();
        relabelled[4] = 1;
        Assert.Throws<EnvelopeIntegrityException>(() => ring.KeyEncryptionKeys.Unwrap(relabelled, handle));
        Assert.Throws<EnvelopeIntegrityException>(() => ring.KeyEncryptionKeys.Version(2).Unwrap(two.AsSpan().ToArray().Also(b => b[4] = 3), handle));
        Assert.NotEqual(ring.Derive(ProxyKeyRing.KeyEncryptionInfoFor(1)), ring.Derive(ProxyKeyRing.KeyEncryptionInfoFor(2)));
    }

    [Fact]
    public void AKeyWrappedBeforeVersionsExisted_StillOpens_AsVersionOne()
    {
        using var ring = ProxyKeyRing.FromBytes(_masterKey);
        using var key = DataKey.CreateRandom();
        const string handle = "bbbbbbbbbbbbbbbbbbbbbbbbbb";

        var legacy = LegacyWrap(key, handle);

        Assert.True(WrappedDataKey.TryReadVersion(legacy, out var version) && version == 1);
        using var back = ring.KeyEncryptionKeys.Unwrap(legacy, handle);
        Assert.Equal(key.Span.ToArray(), back.Span.ToArray());
    }

    [Fact]
    public async Task AnIndexFromBeforeVersions_MovesEveryWrappedKeyToTheKeyTable_LeavesNoCopyBehind_AndDeletesItWithItsRecord()
    {
        using var ring = ProxyKeyRing.FromBytes(_masterKey);
        var old = new RecordIndex(IndexPath, migrateTo: 8);
        using var key = DataKey.CreateRandom();
        var handle = RecordHandle.New();
        var legacy = LegacyWrap(key, handle);
        await old.InsertAsync(Entry(handle, legacy));

        var migrated = new RecordIndex(IndexPath);
        var found = await migrated.FindAsync(handle);

        Assert.Equal(legacy, found!.WrappedKey);
        using (var back = ring.KeyEncryptionKeys.Unwrap(found.WrappedKey, handle))
        {
            Assert.Equal(key.Span.ToArray(), back.Span.ToArray());
        }

        using var connection = migrated.Open();
        Assert.DoesNotContain("wrapped_key", await connection.QueryAsync<string>("SELECT name FROM pragma_table_info('records')"));
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT key_version FROM record_keys WHERE handle = @handle", new { handle }));
        Assert.True(await migrated.DeleteAsync(handle));
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM record_keys"));
    }

    [Fact]
    public async Task NewRecords_UseTheNewVersionAtOnce_AndARetiredVersionCannotBeWrittenToTheIndex()
    {
        using var ring = ProxyKeyRing.FromBytes(_masterKey);
        var index = new RecordIndex(IndexPath);
        Assert.Equal(1, await index.CurrentKeyVersionAsync());
        var before = await InsertAsync(index, ring, 1, "before");

        var store = new KeyVersionStore(index, TimeProvider.System);
        var (rotation, resumed) = store.BeginOrResume();
        Assert.False(resumed);
        Assert.Equal(2, rotation.TargetVersion);

        // Another process's index (the server's) sees the new version on its next upload.
        var server = new RecordIndex(IndexPath);
        Assert.Equal(2, await server.CurrentKeyVersionAsync());
        var after = await InsertAsync(server, ring, await server.CurrentKeyVersionAsync(), "after");
        Assert.Equal(2, KeyVersionOf(await server.FindAsync(after.Handle)));
        Assert.Equal(1, KeyVersionOf(await server.FindAsync(before.Handle)));

        var result = await Rotator(index, ring).RunAsync(Audit);

        Assert.True(result.Complete);
        Assert.Equal([1], result.Retired);
        Assert.Equal(1, result.Rewrapped);
        var refused = await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(() => InsertAsync(server, ring, 1, "late"));
        Assert.Contains("retired", refused.Message);
        Assert.Equal(["Retired", "Current"], store.Versions().Select(v => v.State));
    }

    [Fact]
    public async Task ARotationStoppedHalfway_ResumesFromDisk_AndEndsWithEveryKeyIntact_AndNoneUnderTheRetiredVersion()
    {
        const int records = 3_000;
        var keys = await SeedAsync(records);

        // First run: stopped after 10 batches of 100, as a crash between two transactions would leave it.
        var index = new RecordIndex(IndexPath);
        using (var ring = ProxyKeyRing.FromBytes(_masterKey))
        using (var stop = new CancellationTokenSource())
        {
            var batches = 0;
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Rotator(index, ring).RunAsync(Audit, _ =>
            {
                if (++batches == 10)
                {
                    stop.Cancel();
                }
            }, stop.Token));
        }

        var store = new KeyVersionStore(index, TimeProvider.System);
        Assert.Equal(1_000, store.Rotation(2)!.Rewrapped);
        Assert.Null(store.Rotation(2)!.FinishedAt);
        Assert.Equal(records - 1_000, store.Remaining(2));
        Assert.Equal("Previous", store.Versions()[0].State);
        await AssertEveryKeyIntactAsync(index, keys, expectedVersion: null);

        // Second run: a new process (new index object, key ring rebuilt from the master key).
        var reopened = new RecordIndex(IndexPath);
        using var again = ProxyKeyRing.FromBytes(_masterKey);
        var result = await Rotator(reopened, again).RunAsync(Audit);

        Assert.True(result.Resumed);
        Assert.Equal(2, result.TargetVersion);
        Assert.Equal(records - 1_000, result.Rewrapped);
        Assert.Equal([1], result.Retired);
        Assert.Equal(0, new KeyVersionStore(reopened, TimeProvider.System).Remaining(2));
        await AssertEveryKeyIntactAsync(reopened, keys, expectedVersion: 2);
        Assert.Equal(["start", "resume", "finish"], _audit.Select(e => (string)e.Data["step"]!).Where(s => s != "progress" && s != "incomplete"));

        // A third run rotates again, to version 3, and retires 2.
        var third = await Rotator(reopened, again).RunAsync(Audit);
        Assert.False(third.Resumed);
        Assert.Equal(records, third.Rewrapped);
        Assert.Equal([2], third.Retired);
        await AssertEveryKeyIntactAsync(reopened, keys, expectedVersion: 3);
    }

    [Fact]
    public async Task UploadsAndReWrapsByOthersDuringARotation_AreNeitherLostNorLeftUnderTheOldVersion()
    {
        var keys = await SeedAsync(4_000);
        var index = new RecordIndex(IndexPath);
        using var ring = ProxyKeyRing.FromBytes(_masterKey);
        var handles = keys.Keys.ToArray();
        using var done = new CancellationTokenSource();

        // Another writer on the same file, as the server would be: new uploads, and records' data
        // keys replaced (as a record's re-encryption would), each under the version it read a
        // moment before writing, so around the switch some still land under the old one. The
        // compare-and-set must never put an old data key back over a replaced one.
        var server = new RecordIndex(IndexPath);
        var replaced = 0;
        var refusedAsRetired = 0;
        var writer = Task.Run(async () =>
        {
            var random = new Random(7);
            while (!done.IsCancellationRequested)
            {
                var version = await server.CurrentKeyVersionAsync();
                await Task.Delay(1);
                try
                {
                    var entry = await InsertAsync(server, ring, version, "upload");
                    lock (keys)
                    {
                        keys[entry.Handle] = entry.DataKey;
                    }

                    var handle = handles[random.Next(handles.Length)];
                    using var fresh = DataKey.CreateRandom();
                    var wrapped = ring.KeyEncryptionKeys.Wrap(fresh, handle, version);
                    using var connection = server.Open();
                    if (await connection.ExecuteAsync("UPDATE record_keys SET wrapped_key = @wrapped, key_version = @version WHERE handle = @handle", new { wrapped, version, handle }) == 1)
                    {
                        lock (keys)
                        {
                            keys[handle] = fresh.Span.ToArray();
                        }

                        replaced++;
                    }
                }
                catch (Microsoft.Data.Sqlite.SqliteException ex) when (ex.Message.Contains("retired", StringComparison.Ordinal))
                {
                    // Read the version before the rotation retired it: the index refuses it, nothing is written.
                    refusedAsRetired++;
                }
            }
        });

        await Task.Delay(50);
        var result = await Rotator(index, ring, batchSize: 50).RunAsync(Audit);
        done.Cancel();
        await writer;

        Assert.True(replaced > 0);
        Assert.True(result.Complete, $"{result.Remaining} left");
        Assert.Equal([1], result.Retired);
        await AssertEveryKeyIntactAsync(index, keys, expectedVersion: 2);
    }

    [Fact]
    public async Task ARowWhoseKeyOpensUnderNoVersion_IsReported_AndItsVersionIsNotRetired()
    {
        var keys = await SeedAsync(300);
        var index = new RecordIndex(IndexPath);
        var broken = keys.Keys.Order().ElementAt(123);
        using (var connection = index.Open())
        {
            await connection.ExecuteAsync("UPDATE record_keys SET wrapped_key = @garbage WHERE handle = @broken", new { garbage = RandomNumberGenerator.GetBytes(61), broken });
        }

        using var ring = ProxyKeyRing.FromBytes(_masterKey);
        var result = await Rotator(index, ring).RunAsync(Audit);

        Assert.False(result.Complete);
        Assert.Equal([broken], result.Unreadable);
        Assert.Equal(299, result.Rewrapped);
        Assert.Empty(result.Retired);
        Assert.Equal("Previous", new KeyVersionStore(index, TimeProvider.System).Versions()[0].State);
        Assert.Equal("incomplete", (string)_audit[^1].Data["step"]!);
    }

    [Theory]
    [InlineData(0, 1, 1)]
    [InlineData(100_001, 1, 1)]
    [InlineData(10, 0, 1)]
    [InlineData(10, 1, 0)]
    public async Task BadOptions_AreRefused_BeforeAnyVersionIsCreated(int batchSize, long auditEvery, int maxPasses)
    {
        var index = new RecordIndex(IndexPath);
        using var ring = ProxyKeyRing.FromBytes(_masterKey);
        var options = new KeyRotationOptions { BatchSize = batchSize, AuditEvery = auditEvery, MaxPasses = maxPasses };

        Assert.Single(options.Validate());
        await Assert.ThrowsAsync<ArgumentException>(() => new KeyRotator(index, ring.KeyEncryptionKeys, options, TimeProvider.System).RunAsync(Audit));
        Assert.Single(new KeyVersionStore(index, TimeProvider.System).Versions());
    }

    public void Dispose() => _directory.Dispose();

    private Task Audit(AuditEvent entry)
    {
        lock (_audit)
        {
            _audit.Add(entry);
        }

        return Task.CompletedTask;
    }

    private KeyRotator Rotator(RecordIndex index, ProxyKeyRing ring, int batchSize = 100) =>
        new(index, ring.KeyEncryptionKeys, new KeyRotationOptions { BatchSize = batchSize, AuditEvery = 500 }, TimeProvider.System);

    /// <summary>Records wrapped under version 1, half in the format written before versions existed; their data keys by handle.</summary>
    private async Task<Dictionary<string, byte[]>> SeedAsync(int count)
    {
        var index = new RecordIndex(IndexPath);
        using var ring = ProxyKeyRing.FromBytes(_masterKey);
        var keys = new Dictionary<string, byte[]>();
        using var connection = index.Open();
        using var transaction = connection.BeginTransaction();
        for (var i = 0; i < count; i++)
        {
            var handle = RecordHandle.New();
            using var key = DataKey.CreateRandom();
            var wrapped = i % 2 == 0 ? LegacyWrap(key, handle) : ring.KeyEncryptionKeys.Wrap(key, handle, 1);
            await connection.ExecuteAsync(
                """
                INSERT INTO records (handle, object_name, transfer_syntax_uid, plaintext_length, stored_length, content_sha256, origin_organisation, state, created_at)
                VALUES (@handle, @name, '1.2.840.10008.1.2.1', 10, 74, zeroblob(32), 'Haukeland', 'Stored', '2026-01-01T00:00:00Z');
                INSERT INTO record_keys (handle, wrapped_key, key_version) VALUES (@handle, @wrapped, 1);
                """,
                new { handle, name = ObjectName.NewRandom().ToString(), wrapped },
                transaction);
            keys[handle] = key.Span.ToArray();
        }

        transaction.Commit();
        return keys;
    }

    private sealed record Inserted(string Handle, byte[] DataKey);

    private static async Task<Inserted> InsertAsync(RecordIndex index, ProxyKeyRing ring, int version, string patient)
    {
        var handle = RecordHandle.New();
        using var key = DataKey.CreateRandom();
        await index.InsertAsync(Entry(handle, ring.KeyEncryptionKeys.Wrap(key, handle, version)) with { PatientPseudonym = patient });
        return new Inserted(handle, key.Span.ToArray());
    }

    private static RecordEntry Entry(string handle, byte[] wrappedKey) => new()
    {
        Handle = handle,
        ObjectName = ObjectName.NewRandom(),
        WrappedKey = wrappedKey,
        TransferSyntaxUid = "1.2.840.10008.1.2.1",
        PlaintextLength = 10,
        StoredLength = 74,
        ContentSha256 = new byte[32],
        OriginOrganisation = "Haukeland",
        State = RecordState.Stored,
        CreatedAt = DateTimeOffset.UtcNow,
    };

    private async Task AssertEveryKeyIntactAsync(RecordIndex index, Dictionary<string, byte[]> keys, int? expectedVersion)
    {
        using var ring = ProxyKeyRing.FromBytes(_masterKey);
        using var connection = index.Open();
        var rows = (await connection.QueryAsync<(string Handle, byte[] WrappedKey, long KeyVersion)>("SELECT k.handle, k.wrapped_key, k.key_version FROM records r JOIN record_keys k ON k.handle = r.handle")).ToList();
        Assert.Equal(keys.Count, rows.Count);
        Assert.Equal(rows.Count, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM record_keys"));
        foreach (var row in rows)
        {
            Assert.True(WrappedDataKey.TryReadVersion(row.WrappedKey, out var version));
            Assert.Equal(row.KeyVersion, version);
            if (expectedVersion is { } expected)
            {
                Assert.Equal(expected, version);
            }

            using var key = ring.KeyEncryptionKeys.Unwrap(row.WrappedKey, row.Handle);
            Assert.True(key.Span.SequenceEqual(keys[row.Handle]), $"record {row.Handle} lost its data key");
        }
    }

    private static int KeyVersionOf(RecordEntry? entry) =>
        WrappedDataKey.TryReadVersion(entry!.WrappedKey, out var version) ? version : throw new InvalidOperationException("no version");

    // The wrapping as written before key versions existed (format 1), kept here to prove those records still open.
    private byte[] LegacyWrap(DataKey key, string handle)
    {
        using var ring = ProxyKeyRing.FromBytes(_masterKey);
        using var aes = new AesGcm(ring.Derive(ProxyKeyRing.KeyEncryptionInfo), 16);
        var wrapped = new byte[61];
        wrapped[0] = 1;
        RandomNumberGenerator.Fill(wrapped.AsSpan(1, 12));
        aes.Encrypt(wrapped.AsSpan(1, 12), key.Span, wrapped.AsSpan(13, 32), wrapped.AsSpan(45, 16), [.. Encoding.ASCII.GetBytes("TrustedProxy/dek/v1\0"), .. Encoding.ASCII.GetBytes(handle)]);
        return wrapped;
    }
}

internal static class ByteArrayExtensions
{
    public static byte[] Also(this byte[] bytes, Action<byte[]> change)
    {
        change(bytes);
        return bytes;
    }
}
