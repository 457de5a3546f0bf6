-- Projections: checkpoints, parked (poison) events, and the built-in read models.
-- Times are Unix seconds (UTC) as doubles, the same on every dialect, so windows are plain ranges.
CREATE TABLE aj_projections (
    name VARCHAR(200) NOT NULL PRIMARY KEY,
    position BIGINT NOT NULL,
    updated_at DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE aj_projection_dead_letters (
    projection VARCHAR(200) NOT NULL,
    position BIGINT NOT NULL,
    event_id VARCHAR(200) NOT NULL,
    stream_id VARCHAR(200) NOT NULL,
    event_type VARCHAR(200) NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    parked_at DOUBLE NOT NULL,
    PRIMARY KEY (projection, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE aj_rm_runs (
    run_id VARCHAR(200) NOT NULL PRIMARY KEY,
    stream_id VARCHAR(200) NOT NULL,
    tenant_id VARCHAR(200),
    agent VARCHAR(200),
    agent_version VARCHAR(200),
    model VARCHAR(200),
    prompt_version VARCHAR(200),
    route VARCHAR(200),
    policy_version VARCHAR(200),
    status VARCHAR(200) NOT NULL,
    end_reason TEXT,
    started_at DOUBLE,
    ended_at DOUBLE,
    duration_ms DOUBLE,
    steps INTEGER NOT NULL,
    model_calls INTEGER NOT NULL,
    tool_calls INTEGER NOT NULL,
    tool_failures INTEGER NOT NULL,
    handoffs INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd DOUBLE NOT NULL,
    first_action_at DOUBLE,
    time_to_first_action_ms DOUBLE,
    policy_denials INTEGER NOT NULL,
    policy_escalations INTEGER NOT NULL,
    approvals INTEGER NOT NULL,
    rejections INTEGER NOT NULL,
    fallback INTEGER NOT NULL,
    human_takeover INTEGER NOT NULL,
    budget_exceeded INTEGER NOT NULL,
    last_position BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX aj_rm_runs_started ON aj_rm_runs (started_at);
CREATE TABLE aj_rm_tool_decisions (
    run_id VARCHAR(200) NOT NULL,
    version INTEGER NOT NULL,
    call_id VARCHAR(200),
    approval_id VARCHAR(200),
    tenant_id VARCHAR(200),
    tool VARCHAR(200) NOT NULL,
    arguments TEXT NOT NULL,
    rule VARCHAR(200),
    status VARCHAR(200) NOT NULL,
    decided_by VARCHAR(200),
    reason TEXT,
    proposed_at DOUBLE NOT NULL,
    decided_at DOUBLE,
    PRIMARY KEY (run_id, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX aj_rm_tool_decisions_status ON aj_rm_tool_decisions (status, proposed_at);
CREATE TABLE aj_rm_tool_calls (
    position BIGINT PRIMARY KEY,
    run_id VARCHAR(200) NOT NULL,
    tenant_id VARCHAR(200),
    tool VARCHAR(200) NOT NULL,
    ok INTEGER NOT NULL,
    latency_ms DOUBLE,
    error TEXT,
    recorded_at DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX aj_rm_tool_calls_tool ON aj_rm_tool_calls (tool, recorded_at);
CREATE TABLE aj_rm_policy_decisions (
    rule VARCHAR(200) NOT NULL,
    action VARCHAR(200) NOT NULL,
    decisions INTEGER NOT NULL,
    last_at DOUBLE NOT NULL,
    PRIMARY KEY (rule, action)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE aj_rm_search (
    position BIGINT NOT NULL PRIMARY KEY,
    stream_id VARCHAR(200) NOT NULL,
    version INTEGER NOT NULL,
    type VARCHAR(200) NOT NULL,
    recorded_at DOUBLE NOT NULL,
    text MEDIUMTEXT NOT NULL,
    FULLTEXT INDEX aj_rm_search_text (text)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
