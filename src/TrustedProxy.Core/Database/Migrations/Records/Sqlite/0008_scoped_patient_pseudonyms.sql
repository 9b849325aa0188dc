-- v8: patient pseudonyms are scoped by issuer or origin organisation (issue 13). The Patient
-- ID alone keeps its own pseudonym for searches that name no issuer. Records indexed before
-- were pseudonymised by the Patient ID alone: both columns hold that value for them, so they
-- keep their old (linked) pseudonym, which consent entries written for them still name.
ALTER TABLE records ADD COLUMN patient_id_match TEXT NULL;
UPDATE records SET patient_id_match = patient_pseudonym;
CREATE INDEX ix_records_patient_id_match ON records (patient_id_match);
