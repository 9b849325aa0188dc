using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;
using TrustedProxy.Database;
using TrustedProxy.Records;
using TrustedProxy.UploadCache;

namespace TrustedProxy.Tests.Database;

/// <summary>
/// The index's migrations as scripts: a fresh index has exactly the schema the inline migrations
/// produced, and indexes written at every earlier version (fixture files made by that code) reach
/// the latest version with their rows.
/// </summary>
public sealed class RecordSchemaMigrationTests : IDisposable
{
    private static readonly DateTimeOffset MigratedAt = new(2027, 3, 4, 5, 6, 7, TimeSpan.Zero);
    private readonly TemporaryDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(MigratedAt);

    public static TheoryData<int> OlderVersions => [1, 2, 3, 4, 5, 6, 7];

    [Fact]
    public void FreshIndex_HasTheSchemaTheInlineMigrationsProduced_ByteForByte()
    {
        // Versions 1-8 as the inline migrations left them (records-schema.txt, written by that code).
        var moved = new RecordIndex(_directory.File("v8.db"), migrateTo: 8, time: _time);
        Assert.Equal(File.ReadAllText(Fixture("records-schema.txt")), Schema(moved));

        // And the latest: version 9 (key-encryption-key versions), written as a script from the start.
        var index = new RecordIndex(_directory.File("proxy.db"), time: _time);
        Assert.Equal(9, RecordIndex.LatestSchemaVersion);
        Assert.Equal(RecordIndex.LatestSchemaVersion, index.SchemaVersion);
        Assert.Equal(File.ReadAllText(Fixture("records-schema-v9.txt")), Schema(index));
    }

    [Theory]
    [MemberData(nameof(OlderVersions))]
    public async Task IndexOfAnOlderVersion_MigratesToTheLatest_KeepsItsRows_AndStampsOnlyTheNewSteps(int version)
    {
        var path = _directory.File("proxy.db");
        File.Copy(Fixture($"records-v{version}.db"), path);

        var index = new RecordIndex(path, time: _time);

        Assert.Equal(RecordIndex.LatestSchemaVersion, index.SchemaVersion);
        Assert.Equal(File.ReadAllText(Fixture("records-schema-v9.txt")), Schema(index));
        var stored = (await index.FindAsync("fixture-stored"))!;
        Assert.Equal([1, 2, 3, 4, 5], stored.WrappedKey);
        Assert.Equal(("patient-pseudonym-1", "1.2.3", "CT", new DateOnly(2024, 1, 10), "Haukeland", RecordState.Stored), (stored.PatientPseudonym, stored.StudyInstanceUid, stored.Modality, stored.StudyDate, stored.OriginOrganisation, stored.State));
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), stored.CreatedAt);
        // v8: records of before keep the Patient ID's own pseudonym as their match.
        Assert.Equal("patient-pseudonym-1", stored.PatientIdMatch);
        Assert.Equal(RecordState.Staged, (await index.FindAsync("fixture-staged"))!.State);
        Assert.Equal(2, await index.CountAsync());
        // v3: each record of before v3 became one block under its own object name (the fixtures of
        // v3 and later hold records without blocks, and gain none).
        var blocks = await new BlockIndex(index).OfRecordAsync("fixture-stored");
        if (version < 3)
        {
            var block = Assert.Single(blocks);
            Assert.Equal((BlockState.Released, 74L), (block.State, block.Length));
        }
        else
        {
            Assert.Empty(blocks);
        }
        using var connection = index.Open();
        Assert.Equal(1, connection.ExecuteScalar<int>("SELECT COUNT(*) FROM decisions WHERE resource = 'fixture-stored'"));
        var stamps = connection.Query<(long Version, string AppliedAt)>("SELECT version, applied_at FROM schema_version ORDER BY version").ToList();
        Assert.Equal(Enumerable.Range(1, 9).Select(v => (long)v), stamps.Select(s => s.Version));
        Assert.All(stamps.Where(s => s.Version > version), s => Assert.Equal(MigratedAt.ToString("O"), s.AppliedAt));
        Assert.All(stamps.Where(s => s.Version <= version), s => Assert.NotEqual(MigratedAt.ToString("O"), s.AppliedAt));
    }

    [Fact]
    public void AStepThatFails_LeavesTheIndexAtTheWholePreviousVersion()
    {
        var path = _directory.File("proxy.db");
        File.Copy(Fixture("records-v7.db"), path);
        using (var connection = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            // v8 adds a column, fills it, then creates this index: the last statement fails.
            connection.Open();
            connection.Execute("CREATE INDEX ix_records_patient_id_match ON records (modality)");
        }

        var failure = Assert.ThrowsAny<SqliteException>(() => new RecordIndex(path, time: _time));

        Assert.Contains("ix_records_patient_id_match", failure.Message);
        using var reopened = new SqliteConnection($"Data Source={path};Pooling=False");
        reopened.Open();
        Assert.Equal(7, reopened.ExecuteScalar<int>("SELECT MAX(version) FROM schema_version"));
        Assert.DoesNotContain("patient_id_match", reopened.Query<string>("SELECT name FROM pragma_table_info('records')"));
    }

    [Fact]
    public void AnIndexNewerThanThisBuild_IsRefused_AndLeftAlone()
    {
        var path = _directory.File("proxy.db");
        new RecordIndex(path, time: _time);
        using (var connection = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            connection.Open();
            connection.Execute("INSERT INTO schema_version (version, applied_at) VALUES (10, '2030-01-01T00:00:00.0000000+00:00')");
        }

        var refused = Assert.Throws<InvalidOperationException>(() => new RecordIndex(path, time: _time));

        Assert.Equal("the index schema is version 10, newer than this proxy knows (9); upgrade the proxy", refused.Message);
    }

    [Fact]
    public async Task ProcessesOpeningAFreshIndexAtOnce_ApplyEachStepOnce()
    {
        var path = _directory.File("proxy.db");

        // Separate pools, as separate processes would have: each index is a connection string of its own.
        var indexes = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => new RecordIndex(path, time: _time))));

        using var connection = indexes[0].Open();
        Assert.Equal(Enumerable.Range(1, 9).Select(v => (long)v), connection.Query<long>("SELECT version FROM schema_version ORDER BY version"));
    }

    [Fact]
    public void EveryEmbeddedScriptSet_IsNumberedFromOneWithoutGaps()
    {
        foreach (var (schema, engine) in new[] { (DatabaseSchema.Records, DatabaseEngine.Sqlite), (DatabaseSchema.CertificateRegistry, DatabaseEngine.Sqlite), (DatabaseSchema.CertificateRegistry, DatabaseEngine.PostgreSql) })
        {
            var scripts = MigrationScripts.Load(schema, engine);
            Assert.Equal(Enumerable.Range(1, scripts.Latest), scripts.Scripts.Select(s => s.Version));
            Assert.All(scripts.Scripts, s => Assert.False(string.IsNullOrWhiteSpace(s.Sql)));
        }

        // The index has no PostgreSQL scripts yet (docs/database.md): asking for them fails loudly.
        Assert.Throws<InvalidOperationException>(() => MigrationScripts.Load(DatabaseSchema.Records, DatabaseEngine.PostgreSql));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _directory.Dispose();
    }

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Database", "Fixtures", name);

    // As the fixture was written: every entry of sqlite_master, its SQL exactly as SQLite keeps it.
    private static string Schema(RecordIndex index)
    {
        using var connection = index.Open();
        var text = new System.Text.StringBuilder();
        foreach (var row in connection.Query<(string Type, string Name, string TableName, string? Sql)>("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"))
        {
            text.Append($"-- {row.Type} {row.Name} on {row.TableName}\n{row.Sql ?? "(none)"}\n");
        }

        return text.ToString();
    }
}
