using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using TrustedProxy.CertificateAuthority;
using TrustedProxy.Database;
using TrustedProxy.Tests.Database;

namespace TrustedProxy.Tests.CertificateAuthority;

/// <summary>
/// What the CA registry promises, whichever engine holds it: one suite, run on SQLite and on a real
/// PostgreSQL 15. A second registry on the same database stands for the CLI beside the server, or a
/// second proxy. The database may be shared by the tests of a class, so each test uses serials of its
/// own and reads CRL numbers relative to where it found them.
/// </summary>
public abstract class IssuedCertificateRegistryContract
{
    private static readonly DateTimeOffset Issued = new DateTimeOffset(2026, 12, 7, 10, 11, 12, TimeSpan.Zero).AddTicks(1234567);
    private readonly string _prefix = Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();

    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 12, 7, 9, 0, 0, TimeSpan.Zero));

    [Fact]
    public void AnAddedCertificate_IsFoundWithEveryField_ByAnotherRegistryOnTheSameDatabase()
    {
        var record = Record("01", Issued) with { NotBefore = Issued.AddMinutes(-5), NotAfter = Issued.AddDays(365) };
        Open().Add(record);

        var found = Open().Find(record.Serial);

        Assert.Equal(record, found);
        Assert.Null(Open().Find(_prefix + "FF"));
    }

    [Fact]
    public void ASerialIsIssuedOnce_ASecondAddIsRefused_AndTheFirstKept()
    {
        var registry = Open();
        registry.Add(Record("02", Issued));

        Assert.ThrowsAny<DbException>(() => Open().Add(Record("02", Issued.AddHours(1)) with { Organisation = "Intruder" }));
        Assert.Equal("Haukeland", registry.Find(_prefix + "02")!.Organisation);
    }

    [Fact]
    public void TheList_IsInIssueOrder_ThenBySerialAsBytes()
    {
        var registry = Open();
        registry.Add(Record("b", Issued.AddSeconds(1)));
        registry.Add(Record("C", Issued.AddSeconds(1)));
        registry.Add(Record("a", Issued));

        // "C" before "b": byte order, on PostgreSQL too whatever the cluster's locale.
        Assert.Equal([_prefix + "a", _prefix + "C", _prefix + "b"], Mine(registry.List()).Select(r => r.Serial));
    }

    [Fact]
    public void ACertificateIsRevokedOnce_KeepingTheFirstReasonAndTime()
    {
        var registry = Open();
        registry.Add(Record("03", Issued));
        registry.Add(Record("04", Issued));
        var at = Issued.AddDays(2);

        Assert.True(registry.Revoke(_prefix + "04", "key-compromise", at));
        Assert.True(registry.Revoke(_prefix + "03", "superseded", at.AddHours(1)));
        Assert.False(Open().Revoke(_prefix + "04", "superseded", at.AddDays(1)));
        Assert.False(registry.Revoke(_prefix + "99", "superseded", at));

        var revoked = Mine(Open().Revoked());
        Assert.Equal([(_prefix + "04", "key-compromise", at), (_prefix + "03", "superseded", at.AddHours(1))], revoked.Select(r => (r.Serial, r.RevocationReason!, r.RevokedAt!.Value)));
    }

    [Fact]
    public async Task ConcurrentRevocations_OfOneCertificate_HaveExactlyOneWinner()
    {
        Open().Add(Record("05", Issued));
        var registries = Enumerable.Range(0, 4).Select(_ => Open()).ToList();

        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(() => registries[i % 4].Revoke(_prefix + "05", $"reason-{i}", Issued.AddMinutes(i)))));

        Assert.Single(results, won => won);
        var winner = Array.IndexOf(results, true);
        Assert.Equal($"reason-{winner}", Open().Find(_prefix + "05")!.RevocationReason);
    }

    [Fact]
    public async Task CrlNumbers_OnlyGrow_AndAreNeverHandedOutTwice_WhoeverTakesThem()
    {
        var registries = Enumerable.Range(0, 4).Select(_ => Open()).ToList();
        var start = registries[0].CurrentCrlNumber();

        var taken = await Task.WhenAll(Enumerable.Range(0, 24).Select(i => Task.Run(() => registries[i % 4].NextCrlNumber())));

        Assert.Equal(Enumerable.Range(1, 24).Select(n => start + n), taken.Order());
        Assert.Equal(start + 24, Open().CurrentCrlNumber());
    }

    [Fact]
    public void OpeningAgain_MigratesNothing_TheSchemaIsStampedOnceWithTheInjectedClock()
    {
        Open();
        Time.Advance(TimeSpan.FromDays(1));
        Open();

        using var connection = Connect();
        var stamps = connection.Query<(long Version, string AppliedAt)>("SELECT version, applied_at FROM ca_schema_version").ToList();
        Assert.Equal([(1L, "2026-12-07T09:00:00.0000000+00:00")], stamps);
    }

    /// <summary>A registry on this test's database (a new instance each time: another process, another node).</summary>
    private protected abstract IssuedCertificateRegistry Open();

    /// <summary>A plain connection to the same database, to look under the store.</summary>
    protected abstract DbConnection Connect();

    private IssuedCertificateRecord Record(string serial, DateTimeOffset issuedAt) => new(
        _prefix + serial, $"CN={serial}, O=Haukeland", "Haukeland", "consumer", "client", issuedAt.AddMinutes(-5), issuedAt.AddDays(30), issuedAt, null, null);

    private List<IssuedCertificateRecord> Mine(IEnumerable<IssuedCertificateRecord> records) => records.Where(r => r.Serial.StartsWith(_prefix, StringComparison.Ordinal)).ToList();
}

public sealed class SqliteIssuedCertificateRegistryTests : IssuedCertificateRegistryContract, IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    [Fact]
    public void ARegistryWrittenBeforeTheScripts_IsStampedVersion1_AndKeepsItsRows()
    {
        var path = _directory.File("old-registry.db");
        using (var connection = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            // What IssuedCertificateRegistry ran on every open before issue 15, and one issued, revoked certificate.
            connection.Open();
            connection.Execute("""
                PRAGMA journal_mode = WAL;
                CREATE TABLE IF NOT EXISTS issued (
                    serial TEXT PRIMARY KEY,
                    subject TEXT NOT NULL,
                    organisation TEXT NOT NULL,
                    role TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    not_before TEXT NOT NULL,
                    not_after TEXT NOT NULL,
                    issued_at TEXT NOT NULL,
                    revoked_at TEXT NULL,
                    revocation_reason TEXT NULL);
                CREATE TABLE IF NOT EXISTS crl_number (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
                INSERT OR IGNORE INTO crl_number (id, value) VALUES (1, 0);
                INSERT INTO issued VALUES ('0A', 'CN=a', 'Haukeland', 'producer', 'client', '2026-01-01T00:00:00.0000000Z', '2027-01-01T00:00:00.0000000Z',
                    '2026-01-01T00:00:00.0000000Z', '2026-02-01T00:00:00.0000000Z', 'key-compromise');
                UPDATE crl_number SET value = 7;
                """);
        }

        var registry = new IssuedCertificateRegistry(path, Time);

        Assert.Equal(("key-compromise", new DateTimeOffset(2026, 2, 1, 0, 0, 0, TimeSpan.Zero)), (registry.Find("0A")!.RevocationReason, registry.Find("0A")!.RevokedAt!.Value));
        Assert.Equal(8, registry.NextCrlNumber());
        using var check = new SqliteConnection($"Data Source={path};Pooling=False");
        check.Open();
        Assert.Equal(1, check.ExecuteScalar<int>("SELECT MAX(version) FROM ca_schema_version"));
    }

    public void Dispose() => _directory.Dispose();

    private protected override IssuedCertificateRegistry Open() => new(_directory.File("registry.db"), Time);

    protected override DbConnection Connect()
    {
        var connection = new SqliteConnection($"Data Source={_directory.File("registry.db")};Pooling=False");
        connection.Open();
        return connection;
    }
}

public sealed class PostgreSqlIssuedCertificateRegistryTests(PostgresDatabase database) : IssuedCertificateRegistryContract, IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task NodesStartingAtOnce_OnAnEmptyDatabase_CreateTheTablesOnce()
    {
        var server = await Testing.Database.PostgresServer.SharedAsync();
        var empty = await server.CreateDatabaseAsync();
        try
        {
            var registries = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(() => IssuedCertificateRegistry.OnPostgreSql(empty, Time))));

            Assert.All(registries, r => Assert.Equal(DatabaseEngine.PostgreSql, r.Engine));
            await using var connection = new NpgsqlConnection(empty);
            await connection.OpenAsync();
            Assert.Equal(1L, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM ca_schema_version"));
            Assert.Equal(0L, await connection.ExecuteScalarAsync<long>("SELECT value FROM crl_number"));
        }
        finally
        {
            await server.DropDatabaseAsync(empty);
        }
    }

    [Fact]
    public async Task ADatabaseMigratedByANewerProxy_IsRefused_AndLeftAsItIs()
    {
        var server = await Testing.Database.PostgresServer.SharedAsync();
        var newer = await server.CreateDatabaseAsync();
        try
        {
            IssuedCertificateRegistry.OnPostgreSql(newer, Time);
            await using (var connection = new NpgsqlConnection(newer))
            {
                await connection.OpenAsync();
                await connection.ExecuteAsync("INSERT INTO ca_schema_version (version, applied_at) VALUES (2, '2030-01-01T00:00:00.0000000+00:00')");
            }

            var refused = Assert.Throws<InvalidOperationException>(() => IssuedCertificateRegistry.OnPostgreSql(newer, Time));

            Assert.Equal("the certificate registry schema is version 2, newer than this proxy knows (1); upgrade the proxy", refused.Message);
            await using var check = new NpgsqlConnection(newer);
            await check.OpenAsync();
            Assert.Equal(2L, await check.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM ca_schema_version"));
        }
        finally
        {
            await server.DropDatabaseAsync(newer);
        }
    }

    private protected override IssuedCertificateRegistry Open() => IssuedCertificateRegistry.OnPostgreSql(database.ConnectionString, Time);

    protected override DbConnection Connect()
    {
        var connection = new NpgsqlConnection(database.ConnectionString);
        connection.Open();
        return connection;
    }
}
