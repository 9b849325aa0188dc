using System.Globalization;
using Dapper;
using Microsoft.Data.Sqlite;
using TrustedProxy.Storage;

namespace TrustedProxy.Records;

/// <summary>
/// The proxy's index of records in SQLite (WAL, synchronous=FULL so an acknowledged row survives
/// power loss). The schema is created and migrated at start-up; each migration runs once, in a
/// transaction, and is recorded in <c>schema_version</c>.
/// </summary>
internal sealed class RecordIndex
{
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE records (
            handle TEXT PRIMARY KEY,
            object_name TEXT NOT NULL UNIQUE,
            wrapped_key BLOB NOT NULL,
            patient_pseudonym TEXT NULL,
            study_instance_uid TEXT NULL,
            series_instance_uid TEXT NULL,
            sop_instance_uid TEXT NULL,
            sop_class_uid TEXT NULL,
            modality TEXT NULL,
            study_date TEXT NULL,
            transfer_syntax_uid TEXT NOT NULL,
            plaintext_length INTEGER NOT NULL,
            stored_length INTEGER NOT NULL,
            content_sha256 BLOB NOT NULL,
            origin_organisation TEXT NOT NULL,
            state TEXT NOT NULL,
            created_at TEXT NOT NULL);
        CREATE INDEX ix_records_patient ON records (patient_pseudonym);
        CREATE INDEX ix_records_study ON records (study_instance_uid);
        CREATE INDEX ix_records_study_date ON records (study_date);
        CREATE INDEX ix_records_state ON records (state);
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            certificate_serial TEXT NOT NULL,
            organisation TEXT NOT NULL,
            role TEXT NOT NULL,
            action TEXT NOT NULL,
            resource TEXT NOT NULL,
            permitted INTEGER NOT NULL,
            rule TEXT NOT NULL,
            reason TEXT NOT NULL);
        """,
    ];

    private readonly string _connectionString;

    public RecordIndex(string databasePath)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(databasePath))!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = databasePath, Pooling = true }.ToString();
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        connection.Execute("PRAGMA journal_mode = WAL;");
        Migrate(connection);
    }

    public int SchemaVersion
    {
        get
        {
            using var connection = Open();
            return connection.ExecuteScalar<int>("SELECT MAX(version) FROM schema_version");
        }
    }

    public async Task InsertAsync(RecordEntry entry)
    {
        await using var connection = Open();
        await connection.ExecuteAsync(
            """
            INSERT INTO records (handle, object_name, wrapped_key, patient_pseudonym, study_instance_uid, series_instance_uid,
                sop_instance_uid, sop_class_uid, modality, study_date, transfer_syntax_uid, plaintext_length, stored_length,
                content_sha256, origin_organisation, state, created_at)
            VALUES (@Handle, @ObjectName, @WrappedKey, @PatientPseudonym, @StudyInstanceUid, @SeriesInstanceUid,
                @SopInstanceUid, @SopClassUid, @Modality, @StudyDate, @TransferSyntaxUid, @PlaintextLength, @StoredLength,
                @ContentSha256, @OriginOrganisation, @State, @CreatedAt)
            """,
            ToParameters(entry)).ConfigureAwait(false);
    }

    public async Task<RecordEntry?> FindAsync(string handle)
    {
        await using var connection = Open();
        var row = await connection.QuerySingleOrDefaultAsync<Row>("SELECT * FROM records WHERE handle = @handle", new { handle }).ConfigureAwait(false);
        return row?.ToEntry();
    }

    /// <summary>Stored records matching the query, newest first.</summary>
    public async Task<IReadOnlyList<RecordEntry>> SearchAsync(RecordQuery query)
    {
        var where = new List<string> { "state = 'Stored'" };
        if (query.PatientPseudonym is not null) where.Add("patient_pseudonym = @PatientPseudonym");
        if (query.StudyInstanceUid is not null) where.Add("study_instance_uid = @StudyInstanceUid");
        if (query.Modality is not null) where.Add("modality = @Modality");
        if (query.StudyDateFrom is not null) where.Add("study_date >= @From");
        if (query.StudyDateTo is not null) where.Add("study_date <= @To");
        if (query.OriginOrganisation is not null) where.Add("origin_organisation = @OriginOrganisation");

        await using var connection = Open();
        var rows = await connection.QueryAsync<Row>(
            $"SELECT * FROM records WHERE {string.Join(" AND ", where)} ORDER BY created_at DESC, handle LIMIT @Limit OFFSET @Offset",
            new
            {
                query.PatientPseudonym,
                query.StudyInstanceUid,
                query.Modality,
                From = DateText(query.StudyDateFrom),
                To = DateText(query.StudyDateTo),
                query.OriginOrganisation,
                query.Limit,
                query.Offset,
            }).ConfigureAwait(false);
        return rows.Select(r => r.ToEntry()).ToList();
    }

    public async Task<IReadOnlyList<RecordEntry>> InStateAsync(RecordState state)
    {
        await using var connection = Open();
        var rows = await connection.QueryAsync<Row>("SELECT * FROM records WHERE state = @state", new { state = state.ToString() }).ConfigureAwait(false);
        return rows.Select(r => r.ToEntry()).ToList();
    }

    /// <summary>Moves a record from one state to another; false if it was not in <paramref name="from"/>.</summary>
    public async Task<bool> TransitionAsync(string handle, RecordState from, RecordState to)
    {
        await using var connection = Open();
        return await connection.ExecuteAsync(
            "UPDATE records SET state = @to WHERE handle = @handle AND state = @from",
            new { handle, from = from.ToString(), to = to.ToString() }).ConfigureAwait(false) == 1;
    }

    public async Task<bool> DeleteAsync(string handle)
    {
        await using var connection = Open();
        return await connection.ExecuteAsync("DELETE FROM records WHERE handle = @handle", new { handle }).ConfigureAwait(false) == 1;
    }

    public async Task<long> CountAsync()
    {
        await using var connection = Open();
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM records").ConfigureAwait(false);
    }

    internal SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        connection.Execute("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;");
        return connection;
    }

    private static void Migrate(SqliteConnection connection)
    {
        connection.Execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
        var current = connection.ExecuteScalar<int?>("SELECT MAX(version) FROM schema_version") ?? 0;
        if (current > Migrations.Length)
        {
            throw new InvalidOperationException($"the index schema is version {current}, newer than this proxy knows ({Migrations.Length}); upgrade the proxy");
        }

        for (var version = current + 1; version <= Migrations.Length; version++)
        {
            using var transaction = connection.BeginTransaction();
            connection.Execute(Migrations[version - 1], transaction: transaction);
            connection.Execute("INSERT INTO schema_version (version, applied_at) VALUES (@version, @at)", new { version, at = DateTimeOffset.UtcNow.ToString("O") }, transaction);
            transaction.Commit();
        }
    }

    private static string? DateText(DateOnly? date) => date?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private static object ToParameters(RecordEntry e) => new
    {
        e.Handle,
        ObjectName = e.ObjectName.ToString(),
        e.WrappedKey,
        e.PatientPseudonym,
        e.StudyInstanceUid,
        e.SeriesInstanceUid,
        e.SopInstanceUid,
        e.SopClassUid,
        e.Modality,
        StudyDate = DateText(e.StudyDate),
        e.TransferSyntaxUid,
        e.PlaintextLength,
        e.StoredLength,
        e.ContentSha256,
        e.OriginOrganisation,
        State = e.State.ToString(),
        CreatedAt = e.CreatedAt.UtcDateTime.ToString("O"),
    };

#pragma warning disable IDE1006 // column names as stored
    private sealed class Row
    {
        public string handle { get; set; } = "";
        public string object_name { get; set; } = "";
        public byte[] wrapped_key { get; set; } = [];
        public string? patient_pseudonym { get; set; }
        public string? study_instance_uid { get; set; }
        public string? series_instance_uid { get; set; }
        public string? sop_instance_uid { get; set; }
        public string? sop_class_uid { get; set; }
        public string? modality { get; set; }
        public string? study_date { get; set; }
        public string transfer_syntax_uid { get; set; } = "";
        public long plaintext_length { get; set; }
        public long stored_length { get; set; }
        public byte[] content_sha256 { get; set; } = [];
        public string origin_organisation { get; set; } = "";
        public string state { get; set; } = "";
        public string created_at { get; set; } = "";

        public RecordEntry ToEntry() => new()
        {
            Handle = handle,
            ObjectName = Storage.ObjectName.Parse(object_name),
            WrappedKey = wrapped_key,
            PatientPseudonym = patient_pseudonym,
            StudyInstanceUid = study_instance_uid,
            SeriesInstanceUid = series_instance_uid,
            SopInstanceUid = sop_instance_uid,
            SopClassUid = sop_class_uid,
            Modality = modality,
            StudyDate = study_date is null ? null : DateOnly.ParseExact(study_date, "yyyy-MM-dd", CultureInfo.InvariantCulture),
            TransferSyntaxUid = transfer_syntax_uid,
            PlaintextLength = plaintext_length,
            StoredLength = stored_length,
            ContentSha256 = content_sha256,
            OriginOrganisation = origin_organisation,
            State = Enum.Parse<RecordState>(state),
            CreatedAt = DateTimeOffset.Parse(created_at, CultureInfo.InvariantCulture),
        };
    }
#pragma warning restore IDE1006
}
