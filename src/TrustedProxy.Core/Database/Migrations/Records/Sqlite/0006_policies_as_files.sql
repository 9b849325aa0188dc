-- v6: policies as files. Each decision keeps its purpose, break-glass flag and justification,
-- the record it was about (record-level decisions), the policy version and its explanation;
-- every policy version loaded is kept with its files, for history and diffs.
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
