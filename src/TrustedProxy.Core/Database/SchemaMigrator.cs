using System.Data.Common;
using System.Globalization;
using Dapper;

namespace TrustedProxy.Database;

/// <summary>
/// Brings one database to the latest version of one schema: each script that has not run yet runs
/// in its own transaction, together with its row in the schema's version table (stamped with the
/// injected clock), so a database is only ever at a whole version. A database at a version newer
/// than the scripts know is refused: this build would misread it.
/// </summary>
/// <remarks>
/// Several processes may start at once (the server and the CLI on SQLite, several nodes on
/// PostgreSQL), so the current version is read again inside each step's transaction, under the
/// database's write lock: a step another process has just applied is skipped, not run twice.
/// SQLite's transactions begin IMMEDIATE (one writer at a time); PostgreSQL takes a transaction-level
/// advisory lock named after the version table.
/// </remarks>
internal sealed class SchemaMigrator(MigrationScripts scripts, TimeProvider time)
{
    /// <summary>Migrates to <paramref name="target"/> (tests of a later migration), or to the latest version; returns the version reached.</summary>
    public int Migrate(DbConnection connection, int? target = null)
    {
        var table = scripts.Schema.VersionTable;
        using (var transaction = connection.BeginTransaction())
        {
            Lock(connection, transaction);
            // TEXT on both engines: one format (ISO 8601, as the SQLite index always had) and one code path.
            connection.Execute($"CREATE TABLE IF NOT EXISTS {table} (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)", transaction: transaction);
            transaction.Commit();
        }

        var reached = Current(connection, null);
        for (var version = reached + 1; version <= (target ?? scripts.Latest); version++)
        {
            using var transaction = connection.BeginTransaction();
            Lock(connection, transaction);
            reached = Current(connection, transaction);
            if (reached < version)
            {
                connection.Execute(scripts.Scripts[version - 1].Sql, transaction: transaction);
                connection.Execute(
                    $"INSERT INTO {table} (version, applied_at) VALUES (@version, @at)",
                    new { version, at = time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture) },
                    transaction);
                reached = version;
            }

            transaction.Commit();
        }

        return reached;
    }

    /// <summary>The version the database is at; refuses one newer than these scripts.</summary>
    private int Current(DbConnection connection, DbTransaction? transaction)
    {
        var current = connection.ExecuteScalar<int?>($"SELECT MAX(version) FROM {scripts.Schema.VersionTable}", transaction: transaction) ?? 0;
        return current <= scripts.Latest
            ? current
            : throw new InvalidOperationException($"the {scripts.Schema.Description} schema is version {current}, newer than this proxy knows ({scripts.Latest}); upgrade the proxy");
    }

    private void Lock(DbConnection connection, DbTransaction transaction)
    {
        if (scripts.Engine == DatabaseEngine.PostgreSql)
        {
            connection.Execute("SELECT pg_advisory_xact_lock(hashtext(@table))", new { table = scripts.Schema.VersionTable }, transaction);
        }
    }
}
