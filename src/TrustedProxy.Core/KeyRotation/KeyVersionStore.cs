using System.Globalization;
using Dapper;
using Microsoft.Data.Sqlite;
using TrustedProxy.Records;

namespace TrustedProxy.KeyRotation;

// Settable properties rather than positional records: Dapper matches a constructor only when
// SQLite's reported column types fit it exactly.

/// <summary>A key-encryption-key version as the index knows it.</summary>
internal sealed class KeyVersionInfo
{
    public long Version { get; set; }

    public string State { get; set; } = "";

    public long Records { get; set; }

    public string CreatedAt { get; set; } = "";

    public string? RetiredAt { get; set; }
}

/// <summary>A rotation's durable progress (the <c>key_rotations</c> row of its target version).</summary>
internal sealed class KeyRotationProgressRow
{
    public long TargetVersion { get; set; }

    public string Cursor { get; set; } = "";

    public long Passes { get; set; }

    public long Rewrapped { get; set; }

    public long Conflicts { get; set; }

    public string StartedAt { get; set; } = "";

    public string? FinishedAt { get; set; }
}

/// <summary>
/// The index tables of key versions and rotations (migration 9): which version is current, which
/// are retired, how far a rotation got. Every change is one short transaction, so the server's
/// uploads on the same file wait milliseconds at most.
/// </summary>
internal sealed class KeyVersionStore(RecordIndex index, TimeProvider time)
{
    public const string Current = "Current";
    public const string Previous = "Previous";
    public const string Retired = "Retired";

    /// <summary>
    /// The unfinished rotation if there is one (a crash or a stop left it), else a new one: a new
    /// version becomes current in the same transaction, so uploads wrap under it from then on.
    /// </summary>
    public (KeyRotationProgressRow Rotation, bool Resumed) BeginOrResume()
    {
        using var connection = index.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        var open = connection.QuerySingleOrDefault<KeyRotationProgressRow>(
            $"{SelectRotation} WHERE finished_at IS NULL ORDER BY target_version DESC LIMIT 1", transaction: transaction);
        if (open is not null)
        {
            transaction.Commit();
            return (open, true);
        }

        var version = connection.ExecuteScalar<int>("SELECT MAX(version) FROM key_versions", transaction: transaction) + 1;
        var now = Now();
        connection.Execute("UPDATE key_versions SET state = @Previous WHERE state = @Current", new { Previous, Current }, transaction);
        connection.Execute("INSERT INTO key_versions (version, state, created_at) VALUES (@version, @Current, @now)", new { version, Current, now }, transaction);
        connection.Execute("INSERT INTO key_rotations (target_version, cursor, started_at) VALUES (@version, '', @now)", new { version, now }, transaction);
        transaction.Commit();
        return (new KeyRotationProgressRow { TargetVersion = version, StartedAt = now }, false);
    }

    public KeyRotationProgressRow? Rotation(long targetVersion)
    {
        using var connection = index.Open();
        return connection.QuerySingleOrDefault<KeyRotationProgressRow>($"{SelectRotation} WHERE target_version = @targetVersion", new { targetVersion });
    }

    /// <summary>Rows whose data key is still wrapped under a version older than <paramref name="targetVersion"/>.</summary>
    public long Remaining(long targetVersion)
    {
        using var connection = index.Open();
        return connection.ExecuteScalar<long>("SELECT COUNT(*) FROM record_keys WHERE key_version < @targetVersion", new { targetVersion });
    }

    /// <summary>Starts the next pass from the beginning of the index (durably, so a resume does too).</summary>
    public void NextPass(long targetVersion)
    {
        using var connection = index.Open();
        connection.Execute("UPDATE key_rotations SET cursor = '', passes = passes + 1 WHERE target_version = @targetVersion", new { targetVersion });
    }

    /// <summary>
    /// Retires every version older than <paramref name="targetVersion"/> and closes the rotation,
    /// if and only if no row refers to one of them: the count and the change are one write
    /// transaction, and the triggers refuse the retired versions to any later write. Null when rows remain.
    /// </summary>
    public IReadOnlyList<int>? TryRetire(long targetVersion)
    {
        using var connection = index.Open();
        using var transaction = connection.BeginTransaction(deferred: false);
        if (connection.ExecuteScalar<long>("SELECT COUNT(*) FROM record_keys WHERE key_version < @targetVersion", new { targetVersion }, transaction) > 0)
        {
            return null;
        }

        var retiring = connection.Query<int>(
            "SELECT version FROM key_versions WHERE version < @targetVersion AND state <> @Retired ORDER BY version", new { targetVersion, Retired }, transaction).ToList();
        var now = Now();
        connection.Execute("UPDATE key_versions SET state = @Retired, retired_at = @now WHERE version IN @retiring", new { Retired, now, retiring }, transaction);
        connection.Execute("UPDATE key_rotations SET finished_at = @now WHERE target_version = @targetVersion", new { now, targetVersion }, transaction);
        transaction.Commit();
        return retiring;
    }

    public IReadOnlyList<KeyVersionInfo> Versions()
    {
        using var connection = index.Open();
        return connection.Query<KeyVersionInfo>(
            """
            SELECT v.version AS Version, v.state AS State, (SELECT COUNT(*) FROM record_keys k WHERE k.key_version = v.version) AS Records,
                   v.created_at AS CreatedAt, v.retired_at AS RetiredAt
            FROM key_versions v ORDER BY v.version
            """).ToList();
    }

    private const string SelectRotation =
        "SELECT target_version AS TargetVersion, cursor AS Cursor, passes AS Passes, rewrapped AS Rewrapped, conflicts AS Conflicts, started_at AS StartedAt, finished_at AS FinishedAt FROM key_rotations";

    private string Now() => time.GetUtcNow().UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    internal static SqliteParameter Parameter(SqliteCommand command, string name, SqliteType type)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.SqliteType = type;
        command.Parameters.Add(parameter);
        return parameter;
    }
}
