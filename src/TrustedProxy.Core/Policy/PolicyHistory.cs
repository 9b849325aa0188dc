using System.Globalization;
using System.Text.Json;
using Dapper;
using TrustedProxy.Records;

namespace TrustedProxy.Policy;

/// <summary>A policy file of a stored version: name, SHA-256 of its text, and the text (left out of listings).</summary>
public sealed record PolicyFileVersion(string Name, string Sha256, string? Content = null);

/// <summary>A policy version the proxy loaded: when, its hash (the set's version), and its files.</summary>
public sealed record PolicyVersion(long Id, string Hash, DateTimeOffset LoadedAt, IReadOnlyList<PolicyFileVersion> Files);

/// <summary>
/// Every policy version the proxy has put in force, in the index: the files' text, the set's hash
/// and the time, so that compliance officers can see what was in force when and diff two versions.
/// A version is added when the set in force changes (a start-up with unchanged files adds nothing).
/// </summary>
internal sealed class PolicyHistory(RecordIndex database)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Records <paramref name="set"/> as in force from <paramref name="at"/> unless it already is; returns the version in force.</summary>
    public async Task<PolicyVersion> RecordAsync(PolicySet set, DateTimeOffset at)
    {
        await using var connection = database.Open();
        await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        var latest = await connection.QuerySingleOrDefaultAsync<Row>("SELECT id, hash, loaded_at, files FROM policy_versions ORDER BY id DESC LIMIT 1", transaction: transaction).ConfigureAwait(false);
        if (latest is not null && latest.hash == set.Version)
        {
            return latest.ToVersion(withContent: false);
        }

        var files = set.Files.Select(f => new PolicyFileVersion(f.Name, f.Sha256, f.Content)).ToList();
        var id = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO policy_versions (hash, loaded_at, files) VALUES (@hash, @at, @files); SELECT last_insert_rowid();",
            new { hash = set.Version, at = at.UtcDateTime.ToString("O"), files = JsonSerializer.Serialize(files, Json) },
            transaction).ConfigureAwait(false);
        await transaction.CommitAsync().ConfigureAwait(false);
        return new PolicyVersion(id, set.Version, at, files.Select(f => f with { Content = null }).ToList());
    }

    /// <summary>Versions newest first, before <paramref name="beforeId"/> when given; files without their text.</summary>
    public async Task<IReadOnlyList<PolicyVersion>> ListAsync(long? beforeId, int limit)
    {
        await using var connection = database.Open();
        var rows = await connection.QueryAsync<Row>(
            "SELECT id, hash, loaded_at, files FROM policy_versions WHERE id < @before ORDER BY id DESC LIMIT @limit",
            new { before = beforeId ?? long.MaxValue, limit }).ConfigureAwait(false);
        return rows.Select(r => r.ToVersion(withContent: false)).ToList();
    }

    /// <summary>One version with its files' text.</summary>
    public async Task<PolicyVersion?> FindAsync(long id)
    {
        await using var connection = database.Open();
        var row = await connection.QuerySingleOrDefaultAsync<Row>("SELECT id, hash, loaded_at, files FROM policy_versions WHERE id = @id", new { id }).ConfigureAwait(false);
        return row?.ToVersion(withContent: true);
    }

#pragma warning disable IDE1006 // column names as stored
    private sealed class Row
    {
        public long id { get; set; }
        public string hash { get; set; } = "";
        public string loaded_at { get; set; } = "";
        public string files { get; set; } = "[]";

        public PolicyVersion ToVersion(bool withContent)
        {
            var list = JsonSerializer.Deserialize<List<PolicyFileVersion>>(files, Json) ?? [];
            return new PolicyVersion(id, hash, DateTimeOffset.Parse(loaded_at, CultureInfo.InvariantCulture),
                withContent ? list : list.Select(f => f with { Content = null }).ToList());
        }
    }
#pragma warning restore IDE1006
}
