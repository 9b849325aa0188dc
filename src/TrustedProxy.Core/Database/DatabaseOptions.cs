using Npgsql;

namespace TrustedProxy.Database;

/// <summary>
/// <c>TrustedProxy:Database</c>: which engine holds what has moved to the database owner so far
/// (docs/database.md). SQLite, the default, keeps its files under the data and certificates
/// directories; PostgreSQL is for several proxies sharing one database.
/// </summary>
public sealed class DatabaseOptions
{
    public const string Section = "TrustedProxy:Database";

    /// <summary><c>sqlite</c> (the default) or <c>postgresql</c>.</summary>
    public string Engine { get; init; } = "sqlite";

    /// <summary>
    /// With <c>postgresql</c>: an Npgsql connection string (multi-host allowed). It may hold a
    /// password, so no message ever repeats it; prefer a password file (Passfile) or PGPASSWORD.
    /// </summary>
    public string? ConnectionString { get; init; }

    /// <summary>The engine named by <see cref="Engine"/>; call <see cref="Validate"/> first.</summary>
    public DatabaseEngine ParsedEngine => TryParseEngine(Engine) ?? throw new InvalidOperationException($"{Section}:Engine: '{Engine}' is not an engine");

    /// <summary>Errors no attribute can see, all of them: an unknown engine, a connection string missing, unusable or unused.</summary>
    public IEnumerable<string> Validate()
    {
        var engine = TryParseEngine(Engine);
        if (engine is null)
        {
            yield return $"{Section}:Engine: unknown engine '{Engine}'; choose sqlite (the default) or postgresql";
            yield break;
        }

        var given = !string.IsNullOrWhiteSpace(ConnectionString);
        if (engine == DatabaseEngine.Sqlite && given)
        {
            yield return $"{Section}:ConnectionString: only read with Engine postgresql; SQLite's files live under the data and certificates directories";
        }
        else if (engine == DatabaseEngine.PostgreSql && !given)
        {
            yield return $"{Section}:ConnectionString: required with Engine postgresql, e.g. Host=db.example;Database=tproxy;Username=tproxy";
        }
        else if (engine == DatabaseEngine.PostgreSql && ConnectionStringError(ConnectionString!) is { } error)
        {
            yield return $"{Section}:ConnectionString: {error}";
        }
    }

    private static DatabaseEngine? TryParseEngine(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        "sqlite" => DatabaseEngine.Sqlite,
        "postgresql" => DatabaseEngine.PostgreSql,
        _ => null,
    };

    // The parser's own message may quote a value (a password among them): only what is wrong is said.
    private static string? ConnectionStringError(string connectionString)
    {
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString);
            if (string.IsNullOrWhiteSpace(builder.Host))
            {
                return "names no Host";
            }

            return string.IsNullOrWhiteSpace(builder.Database) ? "names no Database" : null;
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidCastException or OverflowException)
        {
            return "is not an Npgsql connection string (its text is not repeated here: it may hold a password)";
        }
    }
}
