-- Projections: checkpoints, parked (poison) events, and the built-in read models.
-- Times are Unix seconds (UTC) as doubles, the same on every dialect, so windows are plain ranges.
CREATE TABLE aj_projections (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE aj_projection_dead_letters (
    projection TEXT NOT NULL,
    position INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    parked_at REAL NOT NULL,
    PRIMARY KEY (projection, position)
);
CREATE TABLE aj_rm_runs (
    run_id TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL,
    tenant_id TEXT,
    agent TEXT,
    agent_version TEXT,
    model TEXT,
    prompt_version TEXT,
    route TEXT,
    policy_version TEXT,
    status TEXT NOT NULL,
    end_reason TEXT,
    started_at REAL,
    ended_at REAL,
    duration_ms REAL,
    steps INTEGER NOT NULL,
    model_calls INTEGER NOT NULL,
    tool_calls INTEGER NOT NULL,
    tool_failures INTEGER NOT NULL,
    handoffs INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    first_action_at REAL,
    time_to_first_action_ms REAL,
    policy_denials INTEGER NOT NULL,
    policy_escalations INTEGER NOT NULL,
    approvals INTEGER NOT NULL,
    rejections INTEGER NOT NULL,
    fallback INTEGER NOT NULL,
    human_takeover INTEGER NOT NULL,
    budget_exceeded INTEGER NOT NULL,
    last_position INTEGER NOT NULL
);
CREATE INDEX aj_rm_runs_started ON aj_rm_runs (started_at);
CREATE TABLE aj_rm_tool_decisions (
    run_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    call_id TEXT,
    approval_id TEXT,
    tenant_id TEXT,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    rule TEXT,
    status TEXT NOT NULL,
    decided_by TEXT,
    reason TEXT,
    proposed_at REAL NOT NULL,
    decided_at REAL,
    PRIMARY KEY (run_id, version)
);
CREATE INDEX aj_rm_tool_decisions_status ON aj_rm_tool_decisions (status, proposed_at);
CREATE TABLE aj_rm_tool_calls (
    position INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    tenant_id TEXT,
    tool TEXT NOT NULL,
    ok INTEGER NOT NULL,
    latency_ms REAL,
    error TEXT,
    recorded_at REAL NOT NULL
);
CREATE INDEX aj_rm_tool_calls_tool ON aj_rm_tool_calls (tool, recorded_at);
CREATE TABLE aj_rm_policy_decisions (
    rule TEXT NOT NULL,
    action TEXT NOT NULL,
    decisions INTEGER NOT NULL,
    last_at REAL NOT NULL,
    PRIMARY KEY (rule, action)
);
CREATE VIRTUAL TABLE aj_rm_search USING fts5 (
    text,
    stream_id UNINDEXED,
    version UNINDEXED,
    type UNINDEXED,
    recorded_at UNINDEXED,
    tokenize = 'unicode61'
);
