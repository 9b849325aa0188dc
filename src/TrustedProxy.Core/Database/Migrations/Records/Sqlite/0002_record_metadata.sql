-- v2: sealed metadata, the pseudonyms and UIDs DICOMweb searches by, and series/instance order.
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
