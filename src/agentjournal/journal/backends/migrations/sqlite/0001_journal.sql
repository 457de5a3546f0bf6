-- The journal: events, stream heads, and triggers that make events immutable.
-- recorded_at is ISO-8601 UTC text with microseconds and a Z, which sorts in time order.
CREATE TABLE aj_events (
    position INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    stream_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    actor TEXT,
    tenant_id TEXT,
    correlation_id TEXT,
    causation_id TEXT,
    traceparent TEXT,
    data TEXT NOT NULL,
    metadata TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE INDEX aj_events_type_time ON aj_events (type, recorded_at DESC);
CREATE INDEX aj_events_correlation ON aj_events (correlation_id);
CREATE INDEX aj_events_causation ON aj_events (causation_id);
CREATE TABLE aj_streams (
    stream_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TRIGGER aj_events_no_update BEFORE UPDATE ON aj_events
BEGIN
    SELECT RAISE(ABORT, 'agentjournal: events are immutable; UPDATE is refused');
END;
CREATE TRIGGER aj_events_no_delete BEFORE DELETE ON aj_events
BEGIN
    SELECT RAISE(ABORT, 'agentjournal: events are immutable; DELETE is refused');
END;
