namespace TrustedProxy.Database;

/// <summary>
/// The engines a database owner speaks. SQLite is the embedded default of a single proxy;
/// PostgreSQL is for several proxies sharing one database (issue 15, docs/database.md).
/// </summary>
public enum DatabaseEngine
{
    Sqlite,
    PostgreSql,
}
