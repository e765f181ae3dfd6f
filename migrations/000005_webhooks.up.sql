-- The durable outbox of webhook deliveries: one row per event and receiver URL. A delivery is
-- claimed by pushing next_at past a lease (FOR UPDATE SKIP LOCKED, so several nodes share the
-- work), then completed (delivered), rescheduled with backoff, or given up (failed). A process
-- that dies mid-delivery leaves the row pending; it is retried when the lease runs out
-- (at-least-once; receivers deduplicate by event_id).

CREATE TABLE webhook_deliveries (
    id           bigserial   PRIMARY KEY,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    doc_name     text        NOT NULL DEFAULT '',
    url          text        NOT NULL,
    body         bytea       NOT NULL,
    state        text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts     integer     NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    last_status  integer     NOT NULL DEFAULT 0,
    last_error   text        NOT NULL DEFAULT ''
);

-- Serves the claim query: pending deliveries that are due, oldest due first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending';
