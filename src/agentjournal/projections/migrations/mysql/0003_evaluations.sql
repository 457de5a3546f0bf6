-- The evaluations read model: one row per offline evaluation (its candidate, when it was last
-- scored) and one per evaluated item (route, tenant, the baseline's and the candidate's model,
-- the means of its scores on both sides, its policy moves), the replay delta's source.
-- `scores` keeps each item's fold (every scorer's value per side, repeat and metric) as JSON.
CREATE TABLE aj_rm_evaluations (
    evaluation_id VARCHAR(200) PRIMARY KEY,
    candidate VARCHAR(200) NOT NULL,
    dataset_version VARCHAR(200) NOT NULL,
    items INTEGER NOT NULL,
    repeats INTEGER NOT NULL,
    started_at DOUBLE NOT NULL,
    scored_at DOUBLE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX aj_rm_evaluations_scored ON aj_rm_evaluations (scored_at);
CREATE TABLE aj_rm_evaluation_items (
    evaluation_id VARCHAR(200) NOT NULL,
    item VARCHAR(200) NOT NULL,
    item_index INTEGER NOT NULL,
    agent VARCHAR(200),
    route VARCHAR(200),
    tenant_id VARCHAR(200),
    model VARCHAR(200),
    candidate_model VARCHAR(200),
    repeats INTEGER NOT NULL,
    baseline_quality DOUBLE,
    candidate_quality DOUBLE,
    baseline_cost_usd DOUBLE,
    candidate_cost_usd DOUBLE,
    baseline_latency_ms DOUBLE,
    candidate_latency_ms DOUBLE,
    policy_stricter INTEGER NOT NULL,
    policy_looser INTEGER NOT NULL,
    scored_at DOUBLE,
    scores LONGTEXT NOT NULL,
    PRIMARY KEY (evaluation_id, item)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
