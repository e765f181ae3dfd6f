-- Named versions of documents: the full Yjs state at a moment, the seq of the document's log it
-- covers, who made it and why. Automatic versions (auto = true) are pruned to the newest N per
-- document; named ones stay until the document is deleted.
--
-- No foreign key to documents: a version may be taken of a document that was never stored, and
-- deleting a document deletes its versions explicitly (store.DeleteVersions).

CREATE TABLE document_versions (
    id         bigserial   PRIMARY KEY,
    doc_name   text        NOT NULL,
    label      text        NOT NULL,
    auto       boolean     NOT NULL DEFAULT false,
    -- The version holds the effect of every update of the log with seq <= seq.
    seq        bigint      NOT NULL CHECK (seq >= 0),
    created_by text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    state      bytea       NOT NULL
);

-- Serves "versions of doc X, newest first" and pruning of automatic ones.
CREATE INDEX document_versions_doc ON document_versions (doc_name, id DESC);
