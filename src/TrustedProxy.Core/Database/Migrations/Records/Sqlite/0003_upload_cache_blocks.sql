-- v3: the upload cache. A record's ciphertext is cut into blocks, each its own cloud object
-- under its own random name; until released a block waits in the local cache. Records of
-- earlier versions become one released block each (their object name is their envelope index).
CREATE TABLE blocks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    object_name TEXT NOT NULL UNIQUE,
    handle TEXT NULL,
    block_index INTEGER NOT NULL,
    length INTEGER NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    admitted_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    released_at TEXT NULL);
CREATE INDEX ix_blocks_handle ON blocks (handle, block_index);
CREATE INDEX ix_blocks_state_due ON blocks (state, due_at);
INSERT INTO blocks (object_name, handle, block_index, length, kind, state, admitted_at, due_at, released_at)
    SELECT object_name, handle, 0, stored_length, 'Real',
           CASE state WHEN 'Stored' THEN 'Released' WHEN 'Staged' THEN 'Cached' ELSE 'Deleting' END,
           created_at, CASE state WHEN 'Stored' THEN '9999-12-31T23:59:59.9999999Z' ELSE created_at END,
           CASE state WHEN 'Stored' THEN created_at ELSE NULL END
    FROM records;
