-- v4: retrieval groups. Every released object belongs to one group of N; reading one member
-- reads the group. Blocks released before v4 get their groups at the next start.
ALTER TABLE blocks ADD COLUMN group_id INTEGER NULL;
CREATE INDEX ix_blocks_group ON blocks (group_id);
