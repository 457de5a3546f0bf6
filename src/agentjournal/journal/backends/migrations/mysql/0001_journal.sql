-- The journal: events, stream heads, the position counter, and triggers that make events immutable.
-- Ids are binary-collated without padding (utf8mb4_nopad_bin, MariaDB) so that 'Run-1', 'run-1' and
-- 'run-1 ' are three different streams.
-- data and metadata are LONGTEXT checked with JSON_VALID (MariaDB's JSON), which keeps the bytes.
CREATE TABLE aj_events (
    position BIGINT NOT NULL PRIMARY KEY,
    event_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    stream_id VARCHAR(200) NOT NULL,
    version INT NOT NULL,
    type VARCHAR(200) NOT NULL,
    schema_version INT NOT NULL,
    recorded_at DATETIME(6) NOT NULL,
    actor VARCHAR(255) NULL,
    tenant_id VARCHAR(255) NULL,
    correlation_id VARCHAR(255) NULL,
    causation_id VARCHAR(255) NULL,
    traceparent VARCHAR(255) NULL,
    data LONGTEXT NOT NULL CHECK (JSON_VALID(data)),
    metadata LONGTEXT NOT NULL CHECK (JSON_VALID(metadata)),
    prev_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    UNIQUE KEY aj_events_event_id (event_id),
    UNIQUE KEY aj_events_stream_version (stream_id, version),
    KEY aj_events_type_time (type, recorded_at),
    KEY aj_events_correlation (correlation_id),
    KEY aj_events_causation (causation_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
CREATE TABLE aj_streams (
    stream_id VARCHAR(200) NOT NULL PRIMARY KEY,
    version INT NOT NULL,
    last_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;
-- One row: the last position handed out. Appends update it inside their transaction (see mysql.py).
CREATE TABLE aj_head (
    id TINYINT NOT NULL PRIMARY KEY,
    position BIGINT NOT NULL
) ENGINE=InnoDB;
INSERT INTO aj_head (id, position) VALUES (1, 0);
-- TRUNCATE fires no triggers; InnoDB refuses to truncate a table that a foreign key references.
CREATE TABLE aj_events_guard (
    position BIGINT NULL,
    FOREIGN KEY (position) REFERENCES aj_events (position)
) ENGINE=InnoDB;
CREATE TRIGGER aj_events_no_update BEFORE UPDATE ON aj_events FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'agentjournal: events are immutable; UPDATE is refused';
CREATE TRIGGER aj_events_no_delete BEFORE DELETE ON aj_events FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'agentjournal: events are immutable; DELETE is refused';
