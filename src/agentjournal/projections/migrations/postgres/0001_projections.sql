-- Projections: checkpoints, parked (poison) events, and the built-in read models.
-- Times are Unix seconds (UTC) as doubles, the same on every dialect, so windows are plain ranges.
CREATE TABLE aj_projections (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE aj_projection_dead_letters (
    projection TEXT NOT NULL,
    position BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    parked_at DOUBLE PRECISION NOT NULL,
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
    started_at DOUBLE PRECISION,
    ended_at DOUBLE PRECISION,
    duration_ms DOUBLE PRECISION,
    steps INTEGER NOT NULL,
    model_calls INTEGER NOT NULL,
    tool_calls INTEGER NOT NULL,
    tool_failures INTEGER NOT NULL,
    handoffs INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    first_action_at DOUBLE PRECISION,
    time_to_first_action_ms DOUBLE PRECISION,
    policy_denials INTEGER NOT NULL,
    policy_escalations INTEGER NOT NULL,
    approvals INTEGER NOT NULL,
    rejections INTEGER NOT NULL,
    fallback INTEGER NOT NULL,
    human_takeover INTEGER NOT NULL,
    budget_exceeded INTEGER NOT NULL,
    last_position BIGINT NOT NULL
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
    proposed_at DOUBLE PRECISION NOT NULL,
    decided_at DOUBLE PRECISION,
    PRIMARY KEY (run_id, version)
);
CREATE INDEX aj_rm_tool_decisions_status ON aj_rm_tool_decisions (status, proposed_at);
CREATE TABLE aj_rm_tool_calls (
    position BIGINT PRIMARY KEY,
    run_id TEXT NOT NULL,
    tenant_id TEXT,
    tool TEXT NOT NULL,
    ok INTEGER NOT NULL,
    latency_ms DOUBLE PRECISION,
    error TEXT,
    recorded_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX aj_rm_tool_calls_tool ON aj_rm_tool_calls (tool, recorded_at);
CREATE TABLE aj_rm_policy_decisions (
    rule TEXT NOT NULL,
    action TEXT NOT NULL,
    decisions INTEGER NOT NULL,
    last_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (rule, action)
);
CREATE TABLE aj_rm_search (
    position BIGINT PRIMARY KEY,
    stream_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    recorded_at DOUBLE PRECISION NOT NULL,
    text TEXT NOT NULL,
    document tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED
);
CREATE INDEX aj_rm_search_document ON aj_rm_search USING GIN (document);
