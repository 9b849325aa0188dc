using Dapper;
using TrustedProxy.Records;

namespace TrustedProxy.Testing.Privacy.Wire;

/// <summary>
/// Ground truth of a wire run: the kind (Real, Dummy, Retired) of every object the index ever
/// named. The blocks table forgets an object once it is deleted, so a trigger copies each new row
/// (and each change of kind) aside as it happens. A dummy whose slot an object waiting for cover
/// takes (the backup, <c>ICoverPayloadSource</c>) is renamed in place before its put; a third trigger
/// records the new name, still of kind Dummy (cover to the cloud), and notes it as a cover payload.
/// For scoring only — and for the deliberately broken controls, which play a proxy that leaks its
/// own knowledge.
/// </summary>
public sealed class WireTruth
{
    private readonly RecordIndex _index;

    private WireTruth(RecordIndex index) => _index = index;

    internal static WireTruth Install(RecordIndex index)
    {
        using var connection = index.Open();
        connection.Execute(
            """
            CREATE TABLE IF NOT EXISTS wire_truth (object_name TEXT PRIMARY KEY, kind TEXT NOT NULL);
            CREATE TRIGGER IF NOT EXISTS wire_truth_insert AFTER INSERT ON blocks
            BEGIN INSERT OR REPLACE INTO wire_truth VALUES (new.object_name, new.kind); END;
            CREATE TRIGGER IF NOT EXISTS wire_truth_kind AFTER UPDATE OF kind ON blocks
            BEGIN UPDATE wire_truth SET kind = new.kind WHERE object_name = new.object_name; END;
            CREATE TABLE IF NOT EXISTS wire_cover_payload (object_name TEXT PRIMARY KEY);
            CREATE TRIGGER IF NOT EXISTS wire_truth_rename AFTER UPDATE OF object_name ON blocks WHEN new.object_name <> old.object_name
            BEGIN
                INSERT OR REPLACE INTO wire_truth VALUES (new.object_name, new.kind);
                INSERT OR REPLACE INTO wire_cover_payload VALUES (new.object_name);
            END;
            """);
        return new WireTruth(index);
    }

    /// <summary>The kind of an object name, or null if the proxy never named it.</summary>
    public string? KindOf(string objectName)
    {
        using var connection = _index.Open();
        return connection.QuerySingleOrDefault<string>("SELECT kind FROM wire_truth WHERE object_name = @objectName", new { objectName });
    }

    /// <summary>Every object name the index ever held, with its kind.</summary>
    public IReadOnlyDictionary<string, string> All()
    {
        using var connection = _index.Open();
        return connection.Query<(string Name, string Kind)>("SELECT object_name, kind FROM wire_truth").ToDictionary(r => r.Name, r => r.Kind);
    }

    /// <summary>The names of the objects that took a dummy's slot and name (backup objects), whether or not their put was accepted.</summary>
    public IReadOnlySet<string> CoverPayloads()
    {
        using var connection = _index.Open();
        return connection.Query<string>("SELECT object_name FROM wire_cover_payload").ToHashSet(StringComparer.Ordinal);
    }
}
