-- v9: key-encryption-key versions (issue 16, docs/key-hierarchy.md). Wrapped data keys move
-- out of the wide records rows into a narrow table, so a rotation rewrites ~100-byte rows, 40
-- to a page, rather than each record's whole row with its sealed header; the old column is
-- dropped so no copy under an old version stays behind. Each key row names the version that
-- wrapped it (also in the wrapped key's header; every earlier row is version 1); key_versions
-- says which version wraps new keys and which are retired; key_rotations is a rotation's
-- durable progress. The triggers keep a retired (or unknown) version out of record_keys
-- whatever writes it, and take a record's key with it when the record is deleted.
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
