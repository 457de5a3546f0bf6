-- API keys per tenant. Only a SHA-256 of each secret is kept: the secret itself is shown once.
-- Times are Unix seconds taken from the database's clock. Every create and revoke is also an
-- event on the stream `api-keys`, the audit trail; this table is what authentication reads.
CREATE TABLE aj_api_keys (
    key_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    roles TEXT NOT NULL,
    secret_hash CHAR(64) NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at DOUBLE PRECISION,
    revoked_by TEXT
);
CREATE INDEX aj_api_keys_tenant ON aj_api_keys (tenant_id, created_at);
