-- The evaluations read model: one row per offline evaluation (its candidate, when it was last
-- scored) and one per evaluated item (route, tenant, the baseline's and the candidate's model,
-- the means of its scores on both sides, its policy moves), the replay delta's source.
-- `scores` keeps each item's fold (every scorer's value per side, repeat and metric) as JSON.
CREATE TABLE aj_rm_evaluations (
    evaluation_id TEXT PRIMARY KEY,
    candidate TEXT NOT NULL,
    dataset_version TEXT NOT NULL,
    items INTEGER NOT NULL,
    repeats INTEGER NOT NULL,
    started_at REAL NOT NULL,
    scored_at REAL
);
CREATE INDEX aj_rm_evaluations_scored ON aj_rm_evaluations (scored_at);
CREATE TABLE aj_rm_evaluation_items (
    evaluation_id TEXT NOT NULL,
    item TEXT NOT NULL,
    item_index INTEGER NOT NULL,
    agent TEXT,
    route TEXT,
    tenant_id TEXT,
    model TEXT,
    candidate_model TEXT,
    repeats INTEGER NOT NULL,
    baseline_quality REAL,
    candidate_quality REAL,
    baseline_cost_usd REAL,
    candidate_cost_usd REAL,
    baseline_latency_ms REAL,
    candidate_latency_ms REAL,
    policy_stricter INTEGER NOT NULL,
    policy_looser INTEGER NOT NULL,
    scored_at REAL,
    scores TEXT NOT NULL,
    PRIMARY KEY (evaluation_id, item)
);
