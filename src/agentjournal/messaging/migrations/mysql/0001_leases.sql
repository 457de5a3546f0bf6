-- Leases: which node runs which background worker, until when, with a fencing token.
-- Times are Unix seconds taken from the database's clock, so nodes need not agree on time.
CREATE TABLE aj_leases (
    name VARCHAR(200) NOT NULL PRIMARY KEY,
    owner VARCHAR(200) NOT NULL,
    token BIGINT NOT NULL,
    expires_at DOUBLE NOT NULL,
    acquired_at DOUBLE NOT NULL,
    renewed_at DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
