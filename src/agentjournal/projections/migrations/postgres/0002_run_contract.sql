-- The run contract (contract version 2): the runs read model keeps each run's RunSummary (JSON) and
-- shows who the run is for, its active agent, when it last moved and what it waits for; the
-- tool decisions follow a call to its end (claimed, executed, closed with its run). Both are
-- rebuilt from the journal: their rows are emptied and their checkpoints reset.
ALTER TABLE aj_rm_runs ADD COLUMN user_id TEXT;
ALTER TABLE aj_rm_runs ADD COLUMN active_agent TEXT;
ALTER TABLE aj_rm_runs ADD COLUMN last_event_at DOUBLE PRECISION;
ALTER TABLE aj_rm_runs ADD COLUMN waiting_for TEXT;
ALTER TABLE aj_rm_runs ADD COLUMN summary TEXT;
CREATE INDEX aj_rm_runs_progress ON aj_rm_runs (status, last_event_at);
ALTER TABLE aj_rm_tool_decisions ADD COLUMN agent TEXT;
ALTER TABLE aj_rm_tool_decisions ADD COLUMN arguments_hash TEXT;
ALTER TABLE aj_rm_tool_decisions ADD COLUMN expires_at TEXT;
CREATE INDEX aj_rm_tool_decisions_approval ON aj_rm_tool_decisions (approval_id);
DELETE FROM aj_rm_runs;
DELETE FROM aj_rm_tool_decisions;
UPDATE aj_projections SET position = 0 WHERE name IN ('runs', 'tool_decisions');
