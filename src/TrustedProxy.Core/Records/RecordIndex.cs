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
        """
        ALTER TABLE records ADD COLUMN sealed_metadata BLOB NULL;
        ALTER TABLE records ADD COLUMN accession_pseudonym TEXT NULL;
        ALTER TABLE records ADD COLUMN series_number INTEGER NULL;
        ALTER TABLE records ADD COLUMN instance_number INTEGER NULL;
        ALTER TABLE records ADD COLUMN research_pseudonym TEXT NULL;
        ALTER TABLE records ADD COLUMN deid_study_uid TEXT NULL;
        ALTER TABLE records ADD COLUMN deid_series_uid TEXT NULL;
        ALTER TABLE records ADD COLUMN deid_sop_uid TEXT NULL;
        CREATE INDEX ix_records_accession ON records (accession_pseudonym);
        CREATE INDEX ix_records_series ON records (series_instance_uid);
        CREATE INDEX ix_records_sop ON records (sop_instance_uid);
        CREATE INDEX ix_records_research ON records (research_pseudonym);
        CREATE INDEX ix_records_deid_study ON records (deid_study_uid);
        CREATE INDEX ix_records_deid_series ON records (deid_series_uid);
        CREATE INDEX ix_records_deid_sop ON records (deid_sop_uid);
        """,
        // v3: the upload cache. A record's ciphertext is cut into blocks, each its own cloud object
        // under its own random name; until released a block waits in the local cache. Records of
        // earlier versions become one released block each (their object name is their envelope index).
        """
        CREATE TABLE blocks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            object_name TEXT NOT NULL UNIQUE,
            handle TEXT NULL,
            block_index INTEGER NOT NULL,
            length INTEGER NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            admitted_at TEXT NOT NULL,
            due_at TEXT NOT NULL,
            released_at TEXT NULL);
        CREATE INDEX ix_blocks_handle ON blocks (handle, block_index);
        CREATE INDEX ix_blocks_state_due ON blocks (state, due_at);
        INSERT INTO blocks (object_name, handle, block_index, length, kind, state, admitted_at, due_at, released_at)
            SELECT object_name, handle, 0, stored_length, 'Real',
                   CASE state WHEN 'Stored' THEN 'Released' WHEN 'Staged' THEN 'Cached' ELSE 'Deleting' END,
                   created_at, CASE state WHEN 'Stored' THEN '9999-12-31T23:59:59.9999999Z' ELSE created_at END,
                   CASE state WHEN 'Stored' THEN created_at ELSE NULL END
            FROM records;
        """,
        // v4: retrieval groups. Every released object belongs to one group of N; reading one member
        // reads the group. Blocks released before v4 get their groups at the next start.
        """
        ALTER TABLE blocks ADD COLUMN group_id INTEGER NULL;
        CREATE INDEX ix_blocks_group ON blocks (group_id);
        """,
        // v5: reversible watermarking. How each record is sealed (in its pixels, by a detached seal,
        // or not: older records), and the request tag each decision's fingerprints carry.
        """
        ALTER TABLE records ADD COLUMN seal_kind TEXT NULL;
        ALTER TABLE records ADD COLUMN detached_seal BLOB NULL;
        ALTER TABLE records ADD COLUMN seal_detail TEXT NULL;
        ALTER TABLE records ADD COLUMN original_sha256 BLOB NULL;
        ALTER TABLE decisions ADD COLUMN request_id TEXT NULL;
        ALTER TABLE decisions ADD COLUMN request_tag TEXT NULL;
        CREATE INDEX ix_decisions_request_tag ON decisions (request_tag);
        """,
        // v6: policies as files. Each decision keeps its purpose, break-glass flag and justification,
        // the record it was about (record-level decisions), the policy version and its explanation;
        // every policy version loaded is kept with its files, for history and diffs.
        """
        ALTER TABLE decisions ADD COLUMN purpose TEXT NULL;
        ALTER TABLE decisions ADD COLUMN break_glass INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE decisions ADD COLUMN justification TEXT NULL;
        ALTER TABLE decisions ADD COLUMN record_handle TEXT NULL;
        ALTER TABLE decisions ADD COLUMN policy_version TEXT NULL;
        ALTER TABLE decisions ADD COLUMN explanation TEXT NULL;
        CREATE INDEX ix_decisions_record ON decisions (record_handle);
        CREATE TABLE policy_versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            hash TEXT NOT NULL,
            loaded_at TEXT NOT NULL,
            files TEXT NOT NULL);
        """,
        // v7: what the cloud sees on the wire (issue 20). Every object put from now on is masked
        // under a key tied to its name (docs/encryption-format.md); objects already in the cloud
        // are not, and are read as they are until migrated. A block the backend refused for good
        // waits in quarantine: how often it was refused, and when it may take a slot again.
        """
        ALTER TABLE blocks ADD COLUMN masked INTEGER NOT NULL DEFAULT 0;
        UPDATE blocks SET masked = 1 WHERE state = 'Cached';
        ALTER TABLE blocks ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE blocks ADD COLUMN retry_at TEXT NULL;
        """,
        // v8: patient pseudonyms are scoped by issuer or origin organisation (issue 13). The Patient
        // ID alone keeps its own pseudonym for searches that name no issuer. Records indexed before
        // were pseudonymised by the Patient ID alone: both columns hold that value for them, so they
        // keep their old (linked) pseudonym, which consent entries written for them still name.
        """
        ALTER TABLE records ADD COLUMN patient_id_match TEXT NULL;
        UPDATE records SET patient_id_match = patient_pseudonym;
        CREATE INDEX ix_records_patient_id_match ON records (patient_id_match);
        """,
        // v9: key-encryption-key versions (issue 16, docs/key-hierarchy.md). Wrapped data keys move
        // out of the wide records rows into a narrow table, so a rotation rewrites ~100-byte rows, 40
        // to a page, rather than each record's whole row with its sealed header; the old column is
        // dropped so no copy under an old version stays behind. Each key row names the version that
        // wrapped it (also in the wrapped key's header; every earlier row is version 1); key_versions
        // says which version wraps new keys and which are retired; key_rotations is a rotation's
        // durable progress. The triggers keep a retired (or unknown) version out of record_keys
        // whatever writes it, and take a record's key with it when the record is deleted.
        """
        CREATE TABLE key_versions (
            version INTEGER PRIMARY KEY,
            state TEXT NOT NULL,
            created_at TEXT NOT NULL,
            retired_at TEXT NULL);
        INSERT INTO key_versions (version, state, created_at) VALUES (1, 'Current', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
        CREATE TABLE record_keys (
            handle TEXT PRIMARY KEY,
            wrapped_key BLOB NOT NULL,
            key_version INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO record_keys (handle, wrapped_key, key_version) SELECT handle, wrapped_key, 1 FROM records;
        ALTER TABLE records DROP COLUMN wrapped_key;
        CREATE INDEX ix_record_keys_version ON record_keys (key_version);
        CREATE TABLE key_rotations (
            target_version INTEGER PRIMARY KEY,
            cursor TEXT NOT NULL,
            passes INTEGER NOT NULL DEFAULT 0,
            rewrapped INTEGER NOT NULL DEFAULT 0,
            conflicts INTEGER NOT NULL DEFAULT 0,
            started_at TEXT NOT NULL,
            finished_at TEXT NULL);
        CREATE TRIGGER record_keys_version_insert BEFORE INSERT ON record_keys
            WHEN COALESCE((SELECT state FROM key_versions WHERE version = NEW.key_version), 'Retired') = 'Retired'
            BEGIN SELECT RAISE(ABORT, 'the data key is wrapped under a retired or unknown key-encryption-key version'); END;
        CREATE TRIGGER record_keys_version_update BEFORE UPDATE OF key_version ON record_keys
            WHEN COALESCE((SELECT state FROM key_versions WHERE version = NEW.key_version), 'Retired') = 'Retired'
            BEGIN SELECT RAISE(ABORT, 'the data key is wrapped under a retired or unknown key-encryption-key version'); END;
        CREATE TRIGGER records_delete_key AFTER DELETE ON records
            BEGIN DELETE FROM record_keys WHERE handle = OLD.handle; END;
        """,
    ];

    private readonly string _connectionString;

    // An index opened at an earlier version (tests of later migrations) has no watermarking columns.
    private readonly bool _hasSealColumns;
    private readonly bool _hasPatientIdMatch;
    private readonly bool _hasKeyVersion;

    /// <param name="databasePath">The SQLite file (created if missing).</param>
    /// <param name="migrateTo">Tests only: stop migrating at this schema version, to test a later migration.</param>
    public RecordIndex(string databasePath, int? migrateTo = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(databasePath))!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = databasePath, Pooling = true }.ToString();
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        connection.Execute("PRAGMA journal_mode = WAL;");
        Migrate(connection, migrateTo ?? Migrations.Length);
        _hasSealColumns = (migrateTo ?? Migrations.Length) >= 5;
        _hasPatientIdMatch = (migrateTo ?? Migrations.Length) >= 8;
        _hasKeyVersion = (migrateTo ?? Migrations.Length) >= 9;
    }

    // A record with its wrapped key (in record_keys from v9 on).
    private string Columns => _hasKeyVersion
        ? "r.*, k.wrapped_key AS wrapped_key FROM records r JOIN record_keys k ON k.handle = r.handle"
        : "r.* FROM records r";

    /// <summary>The schema version this build migrates every index to.</summary>
    public static int LatestSchemaVersion => Migrations.Length;

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

    internal SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        connection.Execute("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;");
        return connection;
    }

    private static void Migrate(SqliteConnection connection, int target)
    {
        connection.Execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
        var current = connection.ExecuteScalar<int?>("SELECT MAX(version) FROM schema_version") ?? 0;
        if (current > Migrations.Length)
        {
            throw new InvalidOperationException($"the index schema is version {current}, newer than this proxy knows ({Migrations.Length}); upgrade the proxy");
        }

        for (var version = current + 1; version <= target; version++)
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
