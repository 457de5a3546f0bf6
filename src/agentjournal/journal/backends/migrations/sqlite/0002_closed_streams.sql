-- Closed streams: an event appended with closes_stream is its stream's last one, and the database
-- itself refuses anything after it. The stream head records the closing version (NULL while open);
-- the trigger refuses a row past it. Rows up to it are refused by UNIQUE (stream_id, version), since
-- versions 1..closed_at_version are all taken. See SQLJournal._write for why no other lock is needed.
ALTER TABLE aj_streams ADD COLUMN closed_at_version INTEGER;
CREATE TRIGGER aj_events_closed_stream BEFORE INSERT ON aj_events
WHEN NEW.version > (SELECT closed_at_version FROM aj_streams WHERE stream_id = NEW.stream_id)
BEGIN
    SELECT RAISE(ABORT, 'agentjournal: the stream is closed; nothing can be appended after its closing event');
END;
