-- How far each relay (relay:<name>) has delivered and each process manager (process:<name>) has read;
-- and the messages a relay is retrying or gave up on.
-- A relay: every OutboxMessage at or before `position` was delivered, or is a dead letter in aj_outbox_failures.
CREATE TABLE aj_messaging_checkpoints (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    delivered INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
-- One row per message that failed at least once (its JSON in `dispatch`, so a retry needs no lookup).
-- status: 'retrying' (the relay's head message, waiting for next_attempt_at), 'dead' (gave up after
-- `attempts`; `outbox retry` sets 'retry'), 'retry' (to deliver again on the relay's next step).
CREATE TABLE aj_outbox_failures (
    relay TEXT NOT NULL,
    dispatch_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    destination TEXT NOT NULL,
    message_type TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    dispatch TEXT NOT NULL,
    next_attempt_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (relay, dispatch_id)
);
