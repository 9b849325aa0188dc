-- v1: what the CA issued and revoked, and the number of the newest CRL it signed.
-- Times are ISO 8601 UTC text with seven fractional digits, as on SQLite: one store reads both
-- engines the same way, and text order is time order for values written so. COLLATE "C" orders
-- text by bytes, as SQLite does, whatever locale the cluster was created with.
CREATE TABLE issued (
    serial TEXT COLLATE "C" PRIMARY KEY,
    subject TEXT NOT NULL,
    organisation TEXT NOT NULL,
    role TEXT NOT NULL,
    kind TEXT NOT NULL,
    not_before TEXT COLLATE "C" NOT NULL,
    not_after TEXT COLLATE "C" NOT NULL,
    issued_at TEXT COLLATE "C" NOT NULL,
    revoked_at TEXT COLLATE "C" NULL,
    revocation_reason TEXT NULL);
-- One row: every node takes CRL numbers from it under its row lock, so they only grow.
CREATE TABLE crl_number (id INTEGER PRIMARY KEY CHECK (id = 1), value BIGINT NOT NULL);
INSERT INTO crl_number (id, value) VALUES (1, 0);
