-- Durable Yjs document state in the embedded SQLite store: the same shape as the PostgreSQL
-- tables of migrations/000001 (one row per document, an append-only log of updates, and
-- checkpoints), so the two stores behave alike.
--
-- Sequence numbers are per document (1, 2, 3, ...), handed out by bumping documents.last_seq.
-- SQLite has one writer at a time, so seqs of one document are assigned and committed in order.
-- Names compare with the BINARY collation (memcmp), so ORDER BY name is bytewise like Postgres'
-- COLLATE "C".

CREATE TABLE documents (
    name       TEXT    NOT NULL PRIMARY KEY,
    -- Highest seq ever handed out for this document (0 = none yet).
    last_seq   INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE document_updates (
    doc_name   TEXT    NOT NULL REFERENCES documents (name) ON DELETE CASCADE,
    seq        INTEGER NOT NULL CHECK (seq > 0),
    data       BLOB    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- Serves "updates of doc X after seq N, in order" and "delete updates of X up to N".
    PRIMARY KEY (doc_name, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE document_checkpoints (
    doc_name   TEXT    NOT NULL REFERENCES documents (name) ON DELETE CASCADE,
    -- The checkpoint holds the merged effect of every update with seq <= upto_seq.
    upto_seq   INTEGER NOT NULL CHECK (upto_seq > 0),
    state      BLOB    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (doc_name, upto_seq)
) STRICT;
