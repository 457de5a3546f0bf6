-- Leases: which node runs which background worker, until when, with a fencing token.
-- Times are Unix seconds taken from the database's clock, so nodes need not agree on time.
CREATE TABLE aj_leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    acquired_at DOUBLE PRECISION NOT NULL,
    renewed_at DOUBLE PRECISION NOT NULL
);
