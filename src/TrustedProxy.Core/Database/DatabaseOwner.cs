using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace TrustedProxy.Database;

/// <summary>
/// The one owner of a database: it brings the schema to the latest version when it is opened and
/// hands out connections set up the same way every time. Stores (records, blocks, decisions, the CA
/// registry…) take their connections from it and never create or alter tables themselves.
/// </summary>
internal sealed class DatabaseOwner
{
    private readonly string _connectionString;

    private DatabaseOwner(DatabaseEngine engine, string connectionString)
    {
        Engine = engine;
        _connectionString = connectionString;
    }

    public DatabaseEngine Engine { get; }

    /// <summary>
    /// A SQLite file (created if missing) in WAL mode, every connection with synchronous=FULL so
    /// that an acknowledged row survives power loss.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="scripts">The schema's SQLite scripts.</param>
    /// <param name="time">Stamps each migration's row in the version table.</param>
    /// <param name="pooling">False where the file's handles must close with each connection (the CA registry the CLI shares).</param>
    /// <param name="migrateTo">Tests only: stop at this schema version, to test a later migration.</param>
    public static DatabaseOwner Sqlite(string path, MigrationScripts scripts, TimeProvider time, bool pooling = true, int? migrateTo = null)
    {
        RequireEngine(scripts, DatabaseEngine.Sqlite);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var owner = new DatabaseOwner(DatabaseEngine.Sqlite, new SqliteConnectionStringBuilder { DataSource = path, Pooling = pooling }.ToString());
        using var connection = owner.Open();
        connection.Execute("PRAGMA journal_mode = WAL;");
        new SchemaMigrator(scripts, time).Migrate(connection, migrateTo);
        return owner;
    }

    /// <summary>A PostgreSQL database (it must exist; the proxy creates tables, not databases).</summary>
    public static DatabaseOwner PostgreSql(string connectionString, MigrationScripts scripts, TimeProvider time, int? migrateTo = null)
    {
        RequireEngine(scripts, DatabaseEngine.PostgreSql);
        var owner = new DatabaseOwner(DatabaseEngine.PostgreSql, connectionString);
        using var connection = owner.Open();
        new SchemaMigrator(scripts, time).Migrate(connection, migrateTo);
        return owner;
    }

    public DbConnection Open()
    {
        DbConnection connection = Engine == DatabaseEngine.Sqlite ? new SqliteConnection(_connectionString) : new NpgsqlConnection(_connectionString);
        connection.Open();
        if (Engine == DatabaseEngine.Sqlite)
        {
            connection.Execute("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;");
        }

        return connection;
    }

    private static void RequireEngine(MigrationScripts scripts, DatabaseEngine engine)
    {
        if (scripts.Engine != engine)
        {
            throw new ArgumentException($"{scripts.Engine} scripts cannot migrate a {engine} database", nameof(scripts));
        }
    }
}
