-- v5: reversible watermarking. How each record is sealed (in its pixels, by a detached seal,
-- or not: older records), and the request tag each decision's fingerprints carry.
ALTER TABLE records ADD COLUMN seal_kind TEXT NULL;
ALTER TABLE records ADD COLUMN detached_seal BLOB NULL;
ALTER TABLE records ADD COLUMN seal_detail TEXT NULL;
ALTER TABLE records ADD COLUMN original_sha256 BLOB NULL;
ALTER TABLE decisions ADD COLUMN request_id TEXT NULL;
ALTER TABLE decisions ADD COLUMN request_tag TEXT NULL;
CREATE INDEX ix_decisions_request_tag ON decisions (request_tag);
