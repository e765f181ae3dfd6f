-- Workflows: the relational form of workflow documents (Y.Doc "workflow:<id>").
--
-- A workflow row carries lock_version, bumped by every write that changes the workflow or its
-- children (optimistic locking: UPDATE ... WHERE id = $1 AND lock_version = $2), and deleted_at
-- for soft deletes. Jobs, triggers and edges belong to exactly one workflow; the composite
-- foreign keys on (workflow_id, <job or trigger id>) make the database refuse an edge or cron
-- cursor that points into another workflow. workflow_snapshots keeps a JSON copy of the
-- workflow for every lock_version it reached.
--
-- The checks below back up the validation in package workflow, which runs first and produces
-- the messages users see. ON DELETE SET NULL (column) needs PostgreSQL 15 or later.

CREATE TABLE workflows (
    id              uuid        PRIMARY KEY,
    project_id      uuid        NOT NULL,
    name            text        NOT NULL CHECK (btrim(name) <> '' AND char_length(name) <= 255),
    lock_version    integer     NOT NULL DEFAULT 0 CHECK (lock_version >= 0),
    deleted_at      timestamptz,
    -- Node id → {"x": number, "y": number}; NULL when the editor lays nodes out itself.
    positions       jsonb       CHECK (positions IS NULL OR jsonb_typeof(positions) = 'object'),
    concurrency     integer     CHECK (concurrency IS NULL OR concurrency >= 1),
    enable_job_logs boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- A name is taken only by workflows that are not deleted.
CREATE UNIQUE INDEX workflows_project_id_name_key ON workflows (project_id, name) WHERE deleted_at IS NULL;

CREATE TABLE jobs (
    id                     uuid        PRIMARY KEY,
    workflow_id            uuid        NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    name                   text        NOT NULL CHECK (name ~ '^[A-Za-z0-9_ -]{1,100}$' AND btrim(name) <> ''),
    body                   text        NOT NULL DEFAULT '',
    adaptor                text        NOT NULL DEFAULT '@openfn/language-common@latest' CHECK (adaptor <> ''),
    project_credential_id  uuid,
    keychain_credential_id uuid,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_one_credential CHECK (num_nonnulls(project_credential_id, keychain_credential_id) <= 1),
    -- Deferred so that one save may swap two jobs' names.
    CONSTRAINT jobs_workflow_id_name_key UNIQUE (workflow_id, name) DEFERRABLE INITIALLY DEFERRED,
    -- Target of the composite foreign keys below.
    CONSTRAINT jobs_workflow_id_id_key UNIQUE (workflow_id, id)
);

CREATE TABLE triggers (
    id                 uuid        PRIMARY KEY,
    workflow_id        uuid        NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    type               text        NOT NULL CHECK (type IN ('webhook', 'cron')),
    enabled            boolean     NOT NULL DEFAULT false,
    -- Required for cron triggers (the application fills in '0 0 * * *'), NULL for webhooks.
    cron_expression    text,
    cron_cursor_job_id uuid,
    webhook_reply      text        CHECK (webhook_reply IN ('before_start', 'after_completion', 'custom')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT triggers_cron_expression CHECK (
        (type = 'cron' AND cron_expression IS NOT NULL AND btrim(cron_expression) <> '')
        OR (type = 'webhook' AND cron_expression IS NULL)),
    CONSTRAINT triggers_workflow_id_id_key UNIQUE (workflow_id, id),
    CONSTRAINT triggers_cron_cursor_job_fkey FOREIGN KEY (workflow_id, cron_cursor_job_id)
        REFERENCES jobs (workflow_id, id) ON DELETE SET NULL (cron_cursor_job_id)
);

CREATE TABLE workflow_edges (
    id                   uuid        PRIMARY KEY,
    workflow_id          uuid        NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    source_job_id        uuid,
    source_trigger_id    uuid,
    target_job_id        uuid        NOT NULL,
    condition_type       text        NOT NULL DEFAULT 'always'
        CHECK (condition_type IN ('always', 'on_job_success', 'on_job_failure', 'js_expression')),
    condition_expression text        CHECK (char_length(condition_expression) <= 255),
    condition_label      text        CHECK (char_length(condition_label) <= 255),
    enabled              boolean     NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_edges_one_source CHECK (num_nonnulls(source_job_id, source_trigger_id) = 1),
    CONSTRAINT workflow_edges_not_self CHECK (source_job_id IS NULL OR source_job_id <> target_job_id),
    CONSTRAINT workflow_edges_trigger_condition CHECK (
        source_trigger_id IS NULL OR condition_type IN ('always', 'js_expression')),
    CONSTRAINT workflow_edges_js_expression CHECK (
        condition_type <> 'js_expression'
        OR (btrim(coalesce(condition_expression, '')) <> '' AND btrim(coalesce(condition_label, '')) <> '')),
    CONSTRAINT workflow_edges_source_job_fkey FOREIGN KEY (workflow_id, source_job_id)
        REFERENCES jobs (workflow_id, id) ON DELETE CASCADE,
    CONSTRAINT workflow_edges_source_trigger_fkey FOREIGN KEY (workflow_id, source_trigger_id)
        REFERENCES triggers (workflow_id, id) ON DELETE CASCADE,
    CONSTRAINT workflow_edges_target_job_fkey FOREIGN KEY (workflow_id, target_job_id)
        REFERENCES jobs (workflow_id, id) ON DELETE CASCADE
);

CREATE INDEX jobs_workflow_id ON jobs (workflow_id);
CREATE INDEX triggers_workflow_id ON triggers (workflow_id);
CREATE INDEX workflow_edges_workflow_id ON workflow_edges (workflow_id);

CREATE TABLE workflow_snapshots (
    workflow_id  uuid        NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    lock_version integer     NOT NULL,
    -- The workflow with its jobs, triggers and edges, as package workflow marshals it.
    data         jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, lock_version)
);
