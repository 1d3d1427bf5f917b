-- The management API: tenant API keys, and the indexes its listings read.
--
-- Portable SQL, like 0001: BIGINT milliseconds, TEXT ids.

-- A tenant's API keys (`sk_<prefix>_<secret>`): found by their prefix, checked against the SHA-256
-- (hex) of the whole key; the key itself is never stored.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    prefix      TEXT NOT NULL UNIQUE,
    hash        TEXT NOT NULL,
    name        TEXT,
    created_at  BIGINT NOT NULL,
    -- NULL while the key is usable.
    revoked_at  BIGINT
);

CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);

-- A tenant's events, newest first (GET /v1/events).
CREATE INDEX events_by_tenant ON events (tenant_id, created_at, id);

CREATE INDEX sources_by_tenant ON sources (tenant_id, id);
CREATE INDEX endpoints_by_tenant ON endpoints (tenant_id, id);
