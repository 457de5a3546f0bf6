-- The journal: events, stream heads, the position counter, and triggers that make events immutable.
-- Stream ids use the "C" collation: code-point order on every database, as on the other backends.
-- data and metadata are `json`, which keeps the canonical bytes exactly as written (jsonb would not).
CREATE TABLE aj_events (
    position BIGINT PRIMARY KEY,
    event_id UUID NOT NULL UNIQUE,
    stream_id TEXT COLLATE "C" NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    actor TEXT,
    tenant_id TEXT,
    correlation_id TEXT,
    causation_id TEXT,
    traceparent TEXT,
    data JSON NOT NULL,
    metadata JSON NOT NULL,
    prev_hash CHAR(64) NOT NULL,
    hash CHAR(64) NOT NULL,
    CONSTRAINT aj_events_stream_version UNIQUE (stream_id, version)
);
CREATE INDEX aj_events_type_time ON aj_events (type, recorded_at DESC);
CREATE INDEX aj_events_correlation ON aj_events (correlation_id);
CREATE INDEX aj_events_causation ON aj_events (causation_id);
CREATE TABLE aj_streams (
    stream_id TEXT COLLATE "C" PRIMARY KEY,
    version INTEGER NOT NULL,
    last_hash CHAR(64) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
-- One row: the last position handed out. Appends update it inside their transaction (see postgres.py).
CREATE TABLE aj_head (
    id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    position BIGINT NOT NULL
);
INSERT INTO aj_head (id, position) VALUES (TRUE, 0);
CREATE FUNCTION aj_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'agentjournal: events are immutable; % is refused', TG_OP;
END
$$;
CREATE TRIGGER aj_events_immutable BEFORE UPDATE OR DELETE ON aj_events
    FOR EACH ROW EXECUTE FUNCTION aj_refuse_change();
CREATE TRIGGER aj_events_no_truncate BEFORE TRUNCATE ON aj_events
    FOR EACH STATEMENT EXECUTE FUNCTION aj_refuse_change();
