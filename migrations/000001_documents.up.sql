-- Durable Yjs document state: one row per document, an append-only log of updates,
-- and checkpoints (the merged state of every update up to a sequence number).
--
-- Loading a document reads its newest checkpoint and the updates after it; compaction writes a
-- checkpoint and deletes the updates it covers in one transaction. Sequence numbers are per
-- document (1, 2, 3, ...), handed out by bumping documents.last_seq, whose row lock orders
-- concurrent writers of the same document, so a later seq never commits before an earlier one.

CREATE TABLE documents (
    name       text        PRIMARY KEY,
    -- Highest seq ever handed out for this document (0 = none yet).
    last_seq   bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE document_updates (
    doc_name   text        NOT NULL REFERENCES documents (name) ON DELETE CASCADE,
    seq        bigint      NOT NULL CHECK (seq > 0),
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Serves "updates of doc X after seq N, in order" and "delete updates of X up to N".
    PRIMARY KEY (doc_name, seq)
);

CREATE TABLE document_checkpoints (
    doc_name   text        NOT NULL REFERENCES documents (name) ON DELETE CASCADE,
    -- The checkpoint holds the merged effect of every update with seq <= upto_seq.
    upto_seq   bigint      NOT NULL CHECK (upto_seq > 0),
    state      bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Serves "newest checkpoint of doc X" (backward scan, LIMIT 1).
    PRIMARY KEY (doc_name, upto_seq)
);
