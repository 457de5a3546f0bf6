-- API keys per tenant. Only a SHA-256 of each secret is kept: the secret itself is shown once.
-- Times are Unix seconds taken from the database's clock. Every create and revoke is also an
-- event on the stream `api-keys`, the audit trail; this table is what authentication reads.
CREATE TABLE aj_api_keys (
    key_id VARCHAR(40) NOT NULL PRIMARY KEY,
    tenant_id VARCHAR(200) NOT NULL,
    name VARCHAR(200) NOT NULL,
    roles VARCHAR(100) NOT NULL,
    secret_hash CHAR(64) NOT NULL,
    created_at DOUBLE NOT NULL,
    created_by VARCHAR(255) NOT NULL,
    revoked_at DOUBLE NULL,
    revoked_by VARCHAR(255) NULL,
    UNIQUE KEY aj_api_keys_secret (secret_hash),
    KEY aj_api_keys_tenant (tenant_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
