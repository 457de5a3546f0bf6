-- Closed streams: an event appended with closes_stream is its stream's last one, and the database
-- itself refuses anything after it. The stream head records the closing version (NULL while open);
-- the trigger refuses a row past it (SIGNAL SQLSTATE '45000', error 1644). Rows up to it are refused
-- by aj_events_stream_version, since versions 1..closed_at_version are all taken. See
-- SQLJournal._write for why no other lock is needed.
ALTER TABLE aj_streams ADD COLUMN closed_at_version INT NULL;
-- One statement for split_statements: the inner semicolon is not at the end of a line.
CREATE TRIGGER aj_events_closed_stream BEFORE INSERT ON aj_events FOR EACH ROW
    IF NEW.version > (SELECT closed_at_version FROM aj_streams WHERE stream_id = NEW.stream_id) THEN
        SIGNAL SQLSTATE '45000'
            SET MESSAGE_TEXT = 'agentjournal: the stream is closed; nothing can be appended after its closing event'; END IF;
