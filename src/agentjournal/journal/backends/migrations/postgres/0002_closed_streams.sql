-- Closed streams: an event appended with closes_stream is its stream's last one, and the database
-- itself refuses anything after it. The stream head records the closing version (NULL while open);
-- the trigger refuses a row past it with SQLSTATE 23J01. Rows up to it are refused by the unique
-- (stream_id, version), since versions 1..closed_at_version are all taken. Comparing versions (not
-- just "closed or not") matters here: the trigger may see the stream-head upsert of its own
-- statement (see postgres.py). See SQLJournal._write for why no other lock is needed.
ALTER TABLE aj_streams ADD COLUMN closed_at_version INTEGER;
CREATE FUNCTION aj_refuse_closed_stream() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    closed_at INTEGER;
BEGIN
    SELECT closed_at_version INTO closed_at FROM aj_streams WHERE stream_id = NEW.stream_id;
    IF NEW.version > closed_at THEN
        RAISE EXCEPTION 'agentjournal: the stream is closed; nothing can be appended after its closing event '
                        '(stream %, closed at version %)', NEW.stream_id, closed_at
            USING ERRCODE = '23J01';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER aj_events_closed_stream BEFORE INSERT ON aj_events
    FOR EACH ROW EXECUTE FUNCTION aj_refuse_closed_stream();
