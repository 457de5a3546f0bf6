-- How far each relay (relay:<name>) has delivered and each process manager (process:<name>) has read;
-- and the messages a relay is retrying or gave up on.
-- A relay: every OutboxMessage at or before `position` was delivered, or is a dead letter in aj_outbox_failures.
CREATE TABLE aj_messaging_checkpoints (
    name VARCHAR(200) NOT NULL PRIMARY KEY,
    position BIGINT NOT NULL,
    delivered BIGINT NOT NULL,
    updated_at DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- One row per message that failed at least once (its JSON in `dispatch`, so a retry needs no lookup).
-- status: 'retrying' (the relay's head message, waiting for next_attempt_at), 'dead' (gave up after
-- `attempts`; `outbox retry` sets 'retry'), 'retry' (to deliver again on the relay's next step).
CREATE TABLE aj_outbox_failures (
    relay VARCHAR(200) NOT NULL,
    dispatch_id CHAR(36) NOT NULL,
    position BIGINT NOT NULL,
    destination VARCHAR(500) NOT NULL,
    message_type VARCHAR(200) NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    dispatch TEXT NOT NULL,
    next_attempt_at DOUBLE NOT NULL,
    updated_at DOUBLE NOT NULL,
    PRIMARY KEY (relay, dispatch_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
