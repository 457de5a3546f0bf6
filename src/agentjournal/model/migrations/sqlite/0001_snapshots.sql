-- Aggregate snapshots: the folded state of a stream at a version, per aggregate type.
-- state_version tags the state's shape; event_hash is the hash of the event at `version`,
-- so a snapshot that no longer matches its stream is ignored, never trusted.
CREATE TABLE aj_snapshots (
    stream_id TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    version INTEGER NOT NULL,
    state_version INTEGER NOT NULL,
    event_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    PRIMARY KEY (stream_id, aggregate_type, version)
);
