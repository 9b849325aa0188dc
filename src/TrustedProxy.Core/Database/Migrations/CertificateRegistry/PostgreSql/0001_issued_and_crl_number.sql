-- v1: what the CA issued and revoked, and the number of the newest CRL it signed.
-- Times are ISO 8601 UTC text with seven fractional digits, as on SQLite: one store reads both
-- engines the same way, and text order is time order for values written so.
CREATE TABLE issued (
    serial TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    organisation TEXT NOT NULL,
    role TEXT NOT NULL,
    kind TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    revoked_at TEXT NULL,
    revocation_reason TEXT NULL);
-- One row: every node takes CRL numbers from it, under its row lock, so they only grow.
CREATE TABLE crl_number (id INTEGER PRIMARY KEY CHECK (id = 1), value BIGINT NOT NULL);
INSERT INTO crl_number (id, value) VALUES (1, 0);
