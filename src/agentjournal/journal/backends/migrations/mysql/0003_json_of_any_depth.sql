-- JSON of any depth, as on SQLite and PostgreSQL: MariaDB's JSON_VALID refuses documents nested 32
-- or more levels deep (error 4025, "CONSTRAINT `aj_events.data` failed"), so a payload accepted by
-- the other backends could not be moved here. The journal writes only its own canonical JSON, so
-- the column checks guarded nothing the journal does not check itself; they go. MariaDB drops a
-- column's CHECK only by redefining the column, which rebuilds aj_events once (ALGORITHM=COPY:
-- appends wait while it runs). The bytes stored, and so every hash, stay as they are.
ALTER TABLE aj_events
    MODIFY data LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    MODIFY metadata LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;
