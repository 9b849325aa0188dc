using System.Globalization;
using Dapper;
using Microsoft.Data.Sqlite;
using TrustedProxy.Database;
using TrustedProxy.Storage;

namespace TrustedProxy.Records;

/// <summary>
/// The proxy's index of records in SQLite (WAL, synchronous=FULL so an acknowledged row survives
/// power loss). Its <see cref="DatabaseOwner"/> creates and migrates the schema at start-up from the
/// numbered scripts embedded under Database/Migrations/Records/Sqlite/; each runs once, in a
/// transaction, and is recorded in <c>schema_version</c>.
/// </summary>
internal sealed class RecordIndex
{
    // The index's numbered scripts (Database/Migrations/Records/Sqlite/), read once.
    private static readonly MigrationScripts Scripts = MigrationScripts.Load(DatabaseSchema.Records, DatabaseEngine.Sqlite);

    private readonly DatabaseOwner _database;

    // An index opened at an earlier version (tests of later migrations) has no watermarking columns.
    private readonly bool _hasSealColumns;
    private readonly bool _hasPatientIdMatch;
    private readonly bool _hasKeyVersion;

    /// <param name="databasePath">The SQLite file (created if missing).</param>
    /// <param name="migrateTo">Tests only: stop migrating at this schema version, to test a later migration.</param>
    /// <param name="time">Stamps each migration's row in schema_version (the system clock when none is given).</param>
    public RecordIndex(string databasePath, int? migrateTo = null, TimeProvider? time = null)
    {
        _database = DatabaseOwner.Sqlite(databasePath, Scripts, time ?? TimeProvider.System, pooling: true, migrateTo);
        _hasSealColumns = (migrateTo ?? Scripts.Latest) >= 5;
        _hasPatientIdMatch = (migrateTo ?? Scripts.Latest) >= 8;
        _hasKeyVersion = (migrateTo ?? Scripts.Latest) >= 9;
    }

    // A record with its wrapped key (in record_keys from v9 on).
    private string Columns => _hasKeyVersion
        ? "r.*, k.wrapped_key AS wrapped_key FROM records r JOIN record_keys k ON k.handle = r.handle"
        : "r.* FROM records r";

    /// <summary>The schema version this build migrates every index to.</summary>
    public static int LatestSchemaVersion => Scripts.Latest;

    public int SchemaVersion
    {
        get
        {
            using var connection = Open();
            return connection.ExecuteScalar<int>("SELECT MAX(version) FROM schema_version");
        }
    }

    public async Task InsertAsync(RecordEntry entry) => await InsertAsync(entry, []).ConfigureAwait(false);

    /// <summary>Inserts a record and its blocks in one transaction; returns the blocks' ids in order.</summary>
    public async Task<IReadOnlyList<long>> InsertAsync(RecordEntry entry, IReadOnlyList<UploadCache.CacheBlock> blocks)
    {
        await using var connection = Open();
        await using var transaction = connection.BeginTransaction();
        await connection.ExecuteAsync(
            $"""
            INSERT INTO records (handle, object_name, {(_hasKeyVersion ? "" : "wrapped_key, ")}patient_pseudonym, study_instance_uid, series_instance_uid,
                sop_instance_uid, sop_class_uid, modality, study_date, transfer_syntax_uid, plaintext_length, stored_length,
                content_sha256, origin_organisation, state, created_at, sealed_metadata, accession_pseudonym, series_number,
                instance_number, research_pseudonym, deid_study_uid, deid_series_uid, deid_sop_uid{(_hasSealColumns ? ", seal_kind, detached_seal, seal_detail, original_sha256" : "")}{(_hasPatientIdMatch ? ", patient_id_match" : "")})
            VALUES (@Handle, @ObjectName, {(_hasKeyVersion ? "" : "@WrappedKey, ")}@PatientPseudonym, @StudyInstanceUid, @SeriesInstanceUid,
                @SopInstanceUid, @SopClassUid, @Modality, @StudyDate, @TransferSyntaxUid, @PlaintextLength, @StoredLength,
                @ContentSha256, @OriginOrganisation, @State, @CreatedAt, @SealedMetadata, @AccessionPseudonym, @SeriesNumber,
                @InstanceNumber, @ResearchPseudonym, @DeidentifiedStudyUid, @DeidentifiedSeriesUid, @DeidentifiedSopInstanceUid{(_hasSealColumns ? ", @SealKind, @DetachedSeal, @SealDetail, @OriginalSha256" : "")}{(_hasPatientIdMatch ? ", @PatientIdMatch" : "")})
            """,
            ToParameters(entry),
            transaction).ConfigureAwait(false);
        if (_hasKeyVersion)
        {
            await connection.ExecuteAsync(
                "INSERT INTO record_keys (handle, wrapped_key, key_version) VALUES (@Handle, @WrappedKey, @KeyVersion)",
                new { entry.Handle, entry.WrappedKey, KeyVersion = Crypto.WrappedDataKey.IndexedVersion(entry.WrappedKey) },
                transaction).ConfigureAwait(false);
        }

        var ids = new List<long>(blocks.Count);
        foreach (var block in blocks)
        {
            ids.Add(await UploadCache.BlockIndex.InsertAsync(connection, transaction, block).ConfigureAwait(false));
        }

        await transaction.CommitAsync().ConfigureAwait(false);
        return ids;
    }

    public async Task<RecordEntry?> FindAsync(string handle)
    {
        await using var connection = Open();
        var row = await connection.QuerySingleOrDefaultAsync<Row>($"SELECT {Columns} WHERE r.handle = @handle", new { handle }).ConfigureAwait(false);
        return row?.ToEntry();
    }

    /// <summary>
    /// The records an organisation holds under one SOP Instance UID, oldest first: acknowledged ones
    /// and those still on their way (staged), not those being deleted. Normally at most one; an index
    /// written before duplicates were refused may hold several. Uses ix_records_sop, which is not
    /// unique on purpose: such older duplicates must not stop the migration, and the uploader
    /// serializes the check and the insert per instance (<see cref="RecordUploader"/>).
    /// </summary>
    public async Task<IReadOnlyList<RecordEntry>> FindInstanceAsync(string originOrganisation, string sopInstanceUid)
    {
        await using var connection = Open();
        var rows = await connection.QueryAsync<Row>(
            $"""
            SELECT {Columns}
            WHERE sop_instance_uid = @sopInstanceUid AND origin_organisation = @originOrganisation AND state IN ('Stored', 'Cached', 'Staged')
            ORDER BY created_at, r.handle
            """,
            new { originOrganisation, sopInstanceUid }).ConfigureAwait(false);
        return rows.Select(r => r.ToEntry()).ToList();
    }

    /// <summary>Acknowledged records (stored or cached) matching the query, newest first.</summary>
    public async Task<IReadOnlyList<RecordEntry>> SearchAsync(RecordQuery query)
    {
        await using var connection = Open();
        var rows = await connection.QueryAsync<Row>(
            $"SELECT {Columns} WHERE {Where(query)} ORDER BY created_at DESC, r.handle LIMIT @Limit OFFSET @Offset",
            Parameters(query)).ConfigureAwait(false);
        return rows.Select(r => r.ToEntry()).ToList();
    }

    /// <summary>Stored records matching the query in study, series and instance order (DICOMweb retrieval and instance queries).</summary>
    public async Task<IReadOnlyList<RecordEntry>> SearchInstancesAsync(RecordQuery query)
    {
        await using var connection = Open();
        var rows = await connection.QueryAsync<Row>(
            $"""
            SELECT {Columns} WHERE {Where(query)}
            ORDER BY study_instance_uid, series_number, series_instance_uid, instance_number, sop_instance_uid, r.handle
            LIMIT @Limit OFFSET @Offset
            """,
            Parameters(query)).ConfigureAwait(false);
        return rows.Select(r => r.ToEntry()).ToList();
    }

    /// <summary>Studies with at least one matching record: their counts, modalities and one record to describe them.</summary>
    public async Task<IReadOnlyList<StudySummary>> SearchStudiesAsync(RecordQuery query)
    {
        await using var connection = Open();
        var rows = await connection.QueryAsync<StudySummary>(
            $"""
            SELECT study_instance_uid AS StudyInstanceUid, MAX(deid_study_uid) AS DeidentifiedStudyUid, MIN(study_date) AS StudyDate,
                   GROUP_CONCAT(DISTINCT modality) AS Modalities, COUNT(DISTINCT series_instance_uid) AS SeriesCount,
                   COUNT(*) AS InstanceCount, MIN(handle) AS RepresentativeHandle
            FROM records WHERE {Where(query)} AND study_instance_uid IS NOT NULL
            GROUP BY study_instance_uid ORDER BY MIN(study_date) DESC, study_instance_uid LIMIT @Limit OFFSET @Offset
            """,
            Parameters(query)).ConfigureAwait(false);
        return rows.ToList();
    }

    /// <summary>Series with at least one matching record.</summary>
    public async Task<IReadOnlyList<SeriesSummary>> SearchSeriesAsync(RecordQuery query)
    {
        await using var connection = Open();
        var rows = await connection.QueryAsync<SeriesSummary>(
            $"""
            SELECT series_instance_uid AS SeriesInstanceUid, MAX(deid_series_uid) AS DeidentifiedSeriesUid, MAX(modality) AS Modality,
                   MIN(series_number) AS SeriesNumber, COUNT(*) AS InstanceCount, MIN(handle) AS RepresentativeHandle
            FROM records WHERE {Where(query)} AND series_instance_uid IS NOT NULL
            GROUP BY series_instance_uid ORDER BY MIN(series_number), series_instance_uid LIMIT @Limit OFFSET @Offset
            """,
            Parameters(query)).ConfigureAwait(false);
        return rows.ToList();
    }

    private static string Where(RecordQuery query)
    {
        var where = new List<string> { "state IN ('Stored', 'Cached')" };
        if (query.PatientPseudonym is not null) where.Add("patient_pseudonym = @PatientPseudonym");
        if (query.PatientIdMatch is not null) where.Add("patient_id_match = @PatientIdMatch");
        if (query.ResearchPseudonym is not null) where.Add("research_pseudonym = @ResearchPseudonym");
        if (query.AccessionPseudonym is not null) where.Add("accession_pseudonym = @AccessionPseudonym");
        if (query.StudyInstanceUid is not null) where.Add(query.DeidentifiedUids ? "deid_study_uid = @StudyInstanceUid" : "study_instance_uid = @StudyInstanceUid");
        if (query.SeriesInstanceUid is not null) where.Add(query.DeidentifiedUids ? "deid_series_uid = @SeriesInstanceUid" : "series_instance_uid = @SeriesInstanceUid");
        if (query.SopInstanceUid is not null) where.Add(query.DeidentifiedUids ? "deid_sop_uid = @SopInstanceUid" : "sop_instance_uid = @SopInstanceUid");
        if (query.Modality is not null) where.Add("modality = @Modality");
        if (query.StudyDateFrom is not null) where.Add("study_date >= @From");
        if (query.StudyDateTo is not null) where.Add("study_date <= @To");
        if (query.OriginOrganisations is not null) where.Add("origin_organisation IN @OriginOrganisations");
        return string.Join(" AND ", where);
    }

    private static object Parameters(RecordQuery query) => new
    {
        query.PatientPseudonym,
        query.PatientIdMatch,
        query.ResearchPseudonym,
        query.AccessionPseudonym,
        query.StudyInstanceUid,
        query.SeriesInstanceUid,
        query.SopInstanceUid,
        query.Modality,
        From = DateText(query.StudyDateFrom),
        To = DateText(query.StudyDateTo),
        OriginOrganisations = query.OriginOrganisations?.ToArray(),
        query.Limit,
        query.Offset,
    };

    public async Task<IReadOnlyList<RecordEntry>> InStateAsync(RecordState state)
    {
        await using var connection = Open();
        var rows = await connection.QueryAsync<Row>($"SELECT {Columns} WHERE state = @state", new { state = state.ToString() }).ConfigureAwait(false);
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

    /// <summary>The key-encryption-key version that wraps new data keys (read per upload, so a rotation started by another process applies at once).</summary>
    public async Task<int> CurrentKeyVersionAsync()
    {
        if (!_hasKeyVersion)
        {
            return 1;
        }

        await using var connection = Open();
        return await connection.ExecuteScalarAsync<int>("SELECT version FROM key_versions WHERE state = 'Current'").ConfigureAwait(false);
    }

    public async Task<long> CountAsync()
    {
        await using var connection = Open();
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM records").ConfigureAwait(false);
    }

    internal SqliteConnection Open() => (SqliteConnection)_database.Open();

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
        e.SealedMetadata,
        e.AccessionPseudonym,
        e.SeriesNumber,
        e.InstanceNumber,
        e.ResearchPseudonym,
        e.DeidentifiedStudyUid,
        e.DeidentifiedSeriesUid,
        e.DeidentifiedSopInstanceUid,
        SealKind = e.Seal.ToString(),
        e.DetachedSeal,
        e.SealDetail,
        e.OriginalSha256,
        e.PatientIdMatch,
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
        public byte[]? sealed_metadata { get; set; }
        public string? accession_pseudonym { get; set; }
        public long? series_number { get; set; }
        public long? instance_number { get; set; }
        public string? research_pseudonym { get; set; }
        public string? deid_study_uid { get; set; }
        public string? deid_series_uid { get; set; }
        public string? deid_sop_uid { get; set; }
        public string? seal_kind { get; set; }
        public byte[]? detached_seal { get; set; }
        public string? seal_detail { get; set; }
        public byte[]? original_sha256 { get; set; }
        public string? patient_id_match { get; set; }

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
            SealedMetadata = sealed_metadata,
            AccessionPseudonym = accession_pseudonym,
            SeriesNumber = (int?)series_number,
            InstanceNumber = (int?)instance_number,
            ResearchPseudonym = research_pseudonym,
            DeidentifiedStudyUid = deid_study_uid,
            DeidentifiedSeriesUid = deid_series_uid,
            DeidentifiedSopInstanceUid = deid_sop_uid,
            Seal = seal_kind is null ? Watermarking.RecordSealKind.None : Enum.Parse<Watermarking.RecordSealKind>(seal_kind),
            DetachedSeal = detached_seal,
            SealDetail = seal_detail,
            OriginalSha256 = original_sha256,
            PatientIdMatch = patient_id_match,
        };
    }
#pragma warning restore IDE1006
}

// Settable properties rather than positional records: SQLite reports no column types for an
// empty result, and Dapper then cannot match a constructor.

/// <summary>A study as the index knows it (for QIDO-RS study queries).</summary>
internal sealed class StudySummary
{
    public string StudyInstanceUid { get; set; } = string.Empty;

    public string? DeidentifiedStudyUid { get; set; }

    public string? StudyDate { get; set; }

    public string? Modalities { get; set; }

    public long SeriesCount { get; set; }

    public long InstanceCount { get; set; }

    public string RepresentativeHandle { get; set; } = string.Empty;
}

/// <summary>A series as the index knows it (for QIDO-RS series queries).</summary>
internal sealed class SeriesSummary
{
    public string SeriesInstanceUid { get; set; } = string.Empty;

    public string? DeidentifiedSeriesUid { get; set; }

    public string? Modality { get; set; }

    public long? SeriesNumber { get; set; }

    public long InstanceCount { get; set; }

    public string RepresentativeHandle { get; set; } = string.Empty;
}
