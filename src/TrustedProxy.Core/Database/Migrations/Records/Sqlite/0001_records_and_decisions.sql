-- v1: the index of records and the log of access decisions.
-- Never edit a script once released: indexes in the field ran it. Add the next number instead.
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
