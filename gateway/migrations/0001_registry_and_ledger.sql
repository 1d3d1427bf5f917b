-- Registry (tenants, sources, endpoints) and ledger (raw notifications, their events, the outbox).
--
-- Portable SQL only: the same file runs on SQLite and PostgreSQL. Times are BIGINT milliseconds
-- since the Unix epoch, ids are TEXT, flags are BIGINT 0/1, JSON is TEXT, raw bodies are BYTEA
-- (a BLOB to SQLite).

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE sources (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    store            TEXT NOT NULL,
    -- SHA-256 (hex) of the ingest key: the key itself is never stored.
    ingest_key_hash  TEXT NOT NULL UNIQUE,
    -- The store credentials as JSON (see ledger::registry::StoredCredentials).
    credentials      TEXT NOT NULL,
    enabled          BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE endpoints (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    url          TEXT NOT NULL,
    -- JSON array of signing secrets, newest first.
    secrets      TEXT NOT NULL,
    -- JSON array of event types; empty means every type.
    event_types  TEXT NOT NULL,
    enabled      BIGINT NOT NULL DEFAULT 1,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- One row per distinct notification; a store's resend maps to the same id and adds nothing.
CREATE TABLE notifications (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    store        TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    -- 'accepted' or 'rejected' (malformed input from a known source, kept for replay).
    status       TEXT NOT NULL,
    reason       TEXT,
    body         BYTEA NOT NULL
);

CREATE INDEX notifications_rejected ON notifications (received_at) WHERE status = 'rejected';

CREATE TABLE events (
    id                TEXT PRIMARY KEY,
    notification_id   TEXT NOT NULL REFERENCES notifications (id),
    tenant_id         TEXT NOT NULL,
    source_id         TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    routing_key       TEXT NOT NULL,
    -- The exact JSON published.
    payload           TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    -- NULL until a confirmed, routed publish.
    published_at      BIGINT,
    publish_attempts  BIGINT NOT NULL DEFAULT 0,
    -- The outbox relay takes the event from then on (creation + grace, or a retry time).
    next_attempt_at   BIGINT NOT NULL,
    -- A relay's claim, so that several replicas never publish the same event at once.
    claimed_by        TEXT,
    claimed_until     BIGINT
);

CREATE INDEX events_unpublished ON events (next_attempt_at) WHERE published_at IS NULL;
CREATE INDEX events_by_notification ON events (notification_id);
