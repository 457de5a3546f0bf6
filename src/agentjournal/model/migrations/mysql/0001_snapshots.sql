-- Aggregate snapshots: the folded state of a stream at a version, per aggregate type.
-- state_version tags the state's shape; event_hash is the hash of the event at `version`,
-- so a snapshot that no longer matches its stream is ignored, never trusted.
CREATE TABLE aj_snapshots (
    stream_id VARCHAR(200) NOT NULL,
    aggregate_type VARCHAR(200) NOT NULL,
    version BIGINT NOT NULL,
    state_version INT NOT NULL,
    event_hash CHAR(64) NOT NULL,
    state LONGTEXT NOT NULL,
    taken_at DATETIME(6) NOT NULL,
    PRIMARY KEY (stream_id, aggregate_type, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
