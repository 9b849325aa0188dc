using Dapper;
using System.Data.Common;
using TrustedProxy.Database;

namespace TrustedProxy.CertificateAuthority;

/// <summary>One certificate the CA has issued, as the registry remembers it.</summary>
public sealed record IssuedCertificateRecord(
    string Serial,
    string Subject,
    string Organisation,
    string Role,
    string Kind,
    DateTimeOffset NotBefore,
    DateTimeOffset NotAfter,
    DateTimeOffset IssuedAt,
    DateTimeOffset? RevokedAt,
    string? RevocationReason);

/// <summary>
/// The CA's memory of what it issued and revoked, shared by the server and the CLI so that a
/// revocation made by either is in the next CRL whoever publishes it. The same statements run on
/// SQLite (registry.db beside the CA, the default) and on PostgreSQL (shared by several proxies);
/// its <see cref="DatabaseOwner"/> creates and migrates the tables (Database/Migrations/CertificateRegistry/).
/// </summary>
internal sealed class IssuedCertificateRegistry
{
    private static readonly MigrationScripts SqliteScripts = MigrationScripts.Load(DatabaseSchema.CertificateRegistry, DatabaseEngine.Sqlite);
    private static readonly MigrationScripts PostgreSqlScripts = MigrationScripts.Load(DatabaseSchema.CertificateRegistry, DatabaseEngine.PostgreSql);

    private readonly DatabaseOwner _database;

    /// <summary>The SQLite registry file (created if missing).</summary>
    public IssuedCertificateRegistry(string path, TimeProvider? time = null)
        // Unpooled: the CLI and the server share the file, and nothing should hold it open between operations.
        : this(DatabaseOwner.Sqlite(path, SqliteScripts, time ?? TimeProvider.System, pooling: false))
    {
    }

    private IssuedCertificateRegistry(DatabaseOwner database) => _database = database;

    public DatabaseEngine Engine => _database.Engine;

    /// <summary>The registry in a PostgreSQL database (which must exist), its tables created or migrated now.</summary>
    public static IssuedCertificateRegistry OnPostgreSql(string connectionString, TimeProvider time) =>
        new(DatabaseOwner.PostgreSql(connectionString, PostgreSqlScripts, time));

    public void Add(IssuedCertificateRecord record)
    {
        using var connection = Open();
        connection.Execute(
            """
            INSERT INTO issued (serial, subject, organisation, role, kind, not_before, not_after, issued_at)
            VALUES (@Serial, @Subject, @Organisation, @Role, @Kind, @NotBefore, @NotAfter, @IssuedAt)
            """,
            new { record.Serial, record.Subject, record.Organisation, record.Role, record.Kind, NotBefore = Iso(record.NotBefore), NotAfter = Iso(record.NotAfter), IssuedAt = Iso(record.IssuedAt) });
    }

    public IReadOnlyList<IssuedCertificateRecord> List()
    {
        using var connection = Open();
        return connection.Query<Row>("SELECT * FROM issued ORDER BY issued_at, serial").Select(ToRecord).ToList();
    }

    public IssuedCertificateRecord? Find(string serial)
    {
        using var connection = Open();
        var row = connection.QuerySingleOrDefault<Row>("SELECT * FROM issued WHERE serial = @serial", new { serial });
        return row is null ? null : ToRecord(row);
    }

    /// <summary>Marks a certificate revoked; false if it was already revoked.</summary>
    public bool Revoke(string serial, string reason, DateTimeOffset at)
    {
        using var connection = Open();
        return connection.Execute(
            "UPDATE issued SET revoked_at = @at, revocation_reason = @reason WHERE serial = @serial AND revoked_at IS NULL",
            new { serial, reason, at = Iso(at) }) == 1;
    }

    public IReadOnlyList<IssuedCertificateRecord> Revoked()
    {
        using var connection = Open();
        return connection.Query<Row>("SELECT * FROM issued WHERE revoked_at IS NOT NULL ORDER BY revoked_at").Select(ToRecord).ToList();
    }

    /// <summary>The number of the newest CRL this CA signed: a CRL with a lower one is older.</summary>
    public long CurrentCrlNumber()
    {
        using var connection = Open();
        return connection.ExecuteScalar<long>("SELECT value FROM crl_number WHERE id = 1");
    }

    /// <summary>Takes the next CRL number; CRL numbers only ever grow (RFC 5280 5.2.3).</summary>
    public long NextCrlNumber()
    {
        using var connection = Open();
        return connection.ExecuteScalar<long>("UPDATE crl_number SET value = value + 1 WHERE id = 1 RETURNING value");
    }

    private DbConnection Open() => _database.Open();

    private static string Iso(DateTimeOffset value) => value.UtcDateTime.ToString("O");

    private static IssuedCertificateRecord ToRecord(Row row) => new(
        row.serial, row.subject, row.organisation, row.role, row.kind,
        DateTimeOffset.Parse(row.not_before), DateTimeOffset.Parse(row.not_after), DateTimeOffset.Parse(row.issued_at),
        row.revoked_at is null ? null : DateTimeOffset.Parse(row.revoked_at), row.revocation_reason);

#pragma warning disable IDE1006, SA1300 // column names as stored
    private sealed record Row(string serial, string subject, string organisation, string role, string kind, string not_before, string not_after, string issued_at, string? revoked_at, string? revocation_reason);
#pragma warning restore IDE1006, SA1300
}
