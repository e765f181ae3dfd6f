-- Nodes of one deployment that share this database register here with a heartbeat, so that a
-- node can tell whether another live node uses the same documents (and warn when they do not share
-- a Redis relay: edits between them then travel only by the position check's polling).
CREATE TABLE cluster_nodes (
    id           text        PRIMARY KEY,
    -- Free-form description for operators: host, listen address, version.
    info         text        NOT NULL DEFAULT '',
    -- Whether the node runs with a Redis relay (cluster mode).
    relay        boolean     NOT NULL DEFAULT false,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX cluster_nodes_heartbeat_at ON cluster_nodes (heartbeat_at);
