-- v1: what the CA issued and revoked, and the number of the newest CRL it signed.
-- IF NOT EXISTS / OR IGNORE: registries created before the scripts existed already hold these
-- tables (with the same columns); they are stamped version 1 and keep their rows.
CREATE TABLE IF NOT EXISTS issued (
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
CREATE TABLE IF NOT EXISTS crl_number (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT OR IGNORE INTO crl_number (id, value) VALUES (1, 0);
