-- The forwarder's record: one row per webhook attempt (and per delivery given up without one).
--
-- Portable SQL, like 0001: BIGINT milliseconds, TEXT ids, BYTEA bodies.

CREATE TABLE delivery_attempts (
    -- Random id of this row (a delivery redelivered by the broker may repeat an attempt number).
    id             TEXT PRIMARY KEY,
    event_id       TEXT NOT NULL,
    endpoint_id    TEXT NOT NULL,
    tenant_id      TEXT NOT NULL,
    -- 1 for the initial attempt, 2 for the first retry, ...
    attempt        BIGINT NOT NULL,
    attempted_at   BIGINT NOT NULL,
    -- The HTTP status, NULL when no response came (refused target, timeout, connection error).
    status_code    BIGINT,
    -- Why the attempt failed when there is no status to say it.
    error          TEXT,
    latency_ms     BIGINT NOT NULL,
    -- At most 1 KiB of the response body.
    response_body  BYTEA,
    -- 'delivered', 'retrying' (waiting in the ladder), or 'dead' (in <prefix>.dead).
    outcome        TEXT NOT NULL,
    -- When the next attempt is due, for 'retrying'.
    next_attempt_at BIGINT
);

CREATE INDEX delivery_attempts_by_event ON delivery_attempts (event_id, endpoint_id);
CREATE INDEX delivery_attempts_by_endpoint ON delivery_attempts (endpoint_id, attempted_at);
