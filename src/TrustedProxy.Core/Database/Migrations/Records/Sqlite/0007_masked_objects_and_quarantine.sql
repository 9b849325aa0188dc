-- v7: what the cloud sees on the wire (issue 20). Every object put from now on is masked
-- under a key tied to its name (docs/encryption-format.md); objects already in the cloud
-- are not, and are read as they are until migrated. A block the backend refused for good
-- waits in quarantine: how often it was refused, and when it may take a slot again.
ALTER TABLE blocks ADD COLUMN masked INTEGER NOT NULL DEFAULT 0;
UPDATE blocks SET masked = 1 WHERE state = 'Cached';
ALTER TABLE blocks ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blocks ADD COLUMN retry_at TEXT NULL;
