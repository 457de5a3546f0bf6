"""Queries over the read models: seed 001's daily metrics, tool usage, policy decisions, approvals, search.

Metrics (seed 001, "what to measure every day"), over runs started in a window, grouped by
route, model, tenant or agent:

- success rate: finished runs that completed without fallback or human takeover
- policy violation rate: denied or escalated tool calls per 100 runs
- cost per successful run: the cost of every run in the window (model and tool costs)
  divided by the successful runs
- time to first action p50/p95: from RunStarted to the first approved tool call

And seed 001's replay delta (`replay_deltas`), over evaluations last scored in a window, grouped
by model, route, tenant, candidate or evaluation: the candidate's quality, cost and latency
against its recorded baseline, and the calls it decided stricter or looser (the evaluations
read model).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from agentjournal.projections.base import ProjectionError, require_sql

if TYPE_CHECKING:
    from agentjournal.journal import Journal
    from agentjournal.journal.backends.sql import SQLJournal

GROUPS = {"route": "route", "model": "model", "tenant": "tenant_id", "agent": "agent", "all": "'all'"}
METRICS = (
    "runs",
    "success_rate",
    "violations_per_100_runs",
    "cost_per_successful_run",
    "time_to_first_action_p50_ms",
    "time_to_first_action_p95_ms",
)
_FINISHED = ("completed", "aborted", "cancelled", "failed")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '6h', '7d', '2w' as a timedelta; a clear error otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ProjectionError(f"not a duration: {text!r}; use a number and a unit, e.g. 30m, 6h, 7d or 2w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class GroupMetrics:
    group: str
    runs: int
    finished: int
    successes: int
    violations: int
    cost_usd: float
    tokens: int
    success_rate: float | None
    violations_per_100_runs: float | None
    cost_per_successful_run: float | None
    time_to_first_action_p50_ms: float | None
    time_to_first_action_p95_ms: float | None

    def get(self, metric: str) -> float | None:
        if metric not in METRICS:
            raise ProjectionError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
        value = getattr(self, metric)
        return None if value is None else float(value)


def _group_column(by: str) -> str:
    if by not in GROUPS:
        raise ProjectionError(f"cannot group by {by!r}; choose one of: {', '.join(GROUPS)}")
    return GROUPS[by]


def _run_rows(journal: SQLJournal, by: str, since: datetime, until: datetime) -> list[Any]:
    p = journal.param
    return journal.query(
        f"SELECT {_group_column(by)}, status, fallback, human_takeover, cost_usd, policy_denials, policy_escalations, "
        f"time_to_first_action_ms, input_tokens + output_tokens, started_at FROM aj_rm_runs "
        f"WHERE started_at >= {p} AND started_at < {p}",
        [since.timestamp(), until.timestamp()],
    )


def _summarize(group: str, rows: Iterable[Sequence[Any]]) -> GroupMetrics:
    runs = finished = successes = violations = tokens = 0
    cost = 0.0
    first_actions: list[float] = []
    for _, status, fallback, takeover, cost_usd, denials, escalations, ttfa, run_tokens, *_ in rows:
        runs += 1
        finished += status in _FINISHED
        successes += status == "completed" and not fallback and not takeover
        violations += int(denials) + int(escalations)
        cost += float(cost_usd)
        tokens += int(run_tokens)
        if ttfa is not None:
            first_actions.append(float(ttfa))
    return GroupMetrics(
        group=group,
        runs=runs,
        finished=finished,
        successes=successes,
        violations=violations,
        cost_usd=cost,
        tokens=tokens,
        success_rate=successes / finished if finished else None,
        violations_per_100_runs=violations * 100 / runs if runs else None,
        cost_per_successful_run=cost / successes if successes else None,
        time_to_first_action_p50_ms=percentile(first_actions, 50),
        time_to_first_action_p95_ms=percentile(first_actions, 95),
    )


def metrics(
    journal: Journal, *, by: str = "model", since: datetime, until: datetime | None = None
) -> list[GroupMetrics]:
    """Seed 001's metrics for runs started in [since, until), one row per group, by group name."""
    sql_journal = require_sql(journal, "metrics")
    rows = _run_rows(sql_journal, by, since, until or datetime.now(UTC))
    groups: dict[str, list[Any]] = {}
    for row in rows:
        groups.setdefault(str(row[0]) if row[0] is not None else "(none)", []).append(row)
    return [_summarize(group, groups[group]) for group in sorted(groups)]


def metric_series(
    journal: Journal,
    metric: str,
    *,
    by: str = "model",
    since: datetime,
    until: datetime | None = None,
    bucket: timedelta = timedelta(days=1),
) -> dict[str, list[tuple[datetime, float | None]]]:
    """A metric per time bucket and group, for plotting: {group: [(bucket start, value), ...]}."""
    if metric not in METRICS:
        raise ProjectionError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    if bucket.total_seconds() <= 0:
        raise ProjectionError("the bucket must be a positive duration")
    sql_journal = require_sql(journal, "metrics")
    until = until or datetime.now(UTC)
    width = bucket.total_seconds()
    start = since.timestamp()
    buckets: dict[tuple[str, int], list[Any]] = {}
    for row in _run_rows(sql_journal, by, since, until):
        group = str(row[0]) if row[0] is not None else "(none)"
        buckets.setdefault((group, int((float(row[9]) - start) // width)), []).append(row)
    count = max(1, math.ceil((until.timestamp() - start) / width))
    series: dict[str, list[tuple[datetime, float | None]]] = {}
    for group in sorted({group for group, _ in buckets}):
        series[group] = [
            (
                datetime.fromtimestamp(start + index * width, UTC),
                _summarize(group, buckets[(group, index)]).get(metric) if (group, index) in buckets else None,
            )
            for index in range(count)
        ]
    return series


# ----- the replay delta (the evaluations read model) ---------------------------------------

EVAL_GROUPS = ("model", "route", "tenant", "candidate", "evaluation", "all")
"""How replay deltas group: `model` is the baseline's model and the candidate's (`a → b` when they differ)."""


@dataclass(frozen=True, slots=True)
class ReplayDelta:
    """Seed 001's replay delta for a group of evaluated items: the candidate against the recorded baseline.

    Means are over the items scored on both sides (an item's own value is the mean over its
    repeats); cost and latency deltas are relative (0.15 is +15%); the policy counts are the
    calls each item's worst repeat decided stricter or looser than the baseline.
    """

    group: str
    evaluations: int
    items: int
    quality_baseline: float | None
    quality_candidate: float | None
    quality_delta: float | None
    cost_baseline_usd: float | None
    cost_candidate_usd: float | None
    cost_delta: float | None
    latency_baseline_ms: float | None
    latency_candidate_ms: float | None
    latency_delta: float | None
    policy_stricter: int
    policy_looser: int
    policy_regressions: int


class _ScoredItem(NamedTuple):
    """One evaluated item as the replay delta reads it (aj_rm_evaluation_items, with its candidate)."""

    evaluation_id: str
    candidate: str
    route: str | None
    tenant_id: str | None
    model: str | None
    candidate_model: str | None
    baseline_quality: float | None
    candidate_quality: float | None
    baseline_cost_usd: float | None
    candidate_cost_usd: float | None
    baseline_latency_ms: float | None
    candidate_latency_ms: float | None
    policy_stricter: int
    policy_looser: int

    def group(self, by: str) -> str:
        if by == "model":
            changed = self.candidate_model not in (None, self.model)
            return f"{self.model} → {self.candidate_model}" if changed else str(self.model)
        value = {
            "route": self.route,
            "tenant": self.tenant_id,
            "candidate": self.candidate,
            "evaluation": self.evaluation_id,
            "all": "all",
        }[by]
        return value if value is not None else "(none)"


def _means(pairs: Iterable[tuple[float | None, float | None]]) -> tuple[float | None, float | None]:
    """The baseline's and the candidate's mean over the items that have both."""
    both = [(float(base), float(now)) for base, now in pairs if base is not None and now is not None]
    if not both:
        return None, None
    return sum(base for base, _ in both) / len(both), sum(now for _, now in both) / len(both)


def _change(baseline: float | None, candidate: float | None) -> float | None:
    """Relative change; None when the baseline is 0 and the candidate is not (no ratio to give)."""
    if baseline is None or candidate is None:
        return None
    if baseline > 0:
        return (candidate - baseline) / baseline
    return 0.0 if candidate <= 0 else None


def _delta_of(group: str, items: Sequence[_ScoredItem]) -> ReplayDelta:
    quality_base, quality_now = _means((i.baseline_quality, i.candidate_quality) for i in items)
    cost_base, cost_now = _means((i.baseline_cost_usd, i.candidate_cost_usd) for i in items)
    latency_base, latency_now = _means((i.baseline_latency_ms, i.candidate_latency_ms) for i in items)
    stricter = sum(int(item.policy_stricter) for item in items)
    looser = sum(int(item.policy_looser) for item in items)
    return ReplayDelta(
        group=group,
        evaluations=len({item.evaluation_id for item in items}),
        items=len(items),
        quality_baseline=quality_base,
        quality_candidate=quality_now,
        quality_delta=None if quality_base is None or quality_now is None else quality_now - quality_base,
        cost_baseline_usd=cost_base,
        cost_candidate_usd=cost_now,
        cost_delta=_change(cost_base, cost_now),
        latency_baseline_ms=latency_base,
        latency_candidate_ms=latency_now,
        latency_delta=_change(latency_base, latency_now),
        policy_stricter=stricter,
        policy_looser=looser,
        policy_regressions=stricter + looser,
    )


def replay_deltas(
    journal: Journal, *, by: str = "model", since: datetime, until: datetime | None = None
) -> list[ReplayDelta]:
    """The replay delta of the evaluations last scored in [since, until), one row per group, by group name."""
    if by not in EVAL_GROUPS:
        raise ProjectionError(f"cannot group replay deltas by {by!r}; choose one of: {', '.join(EVAL_GROUPS)}")
    sql_journal = require_sql(journal, "metrics")
    p = sql_journal.param
    columns = ", ".join("e.candidate" if name == "candidate" else f"i.{name}" for name in _ScoredItem._fields)
    rows = sql_journal.query(
        f"SELECT {columns} FROM aj_rm_evaluation_items i "
        "JOIN aj_rm_evaluations e ON e.evaluation_id = i.evaluation_id "
        f"WHERE e.scored_at >= {p} AND e.scored_at < {p} AND i.repeats > 0",
        [since.timestamp(), (until or datetime.now(UTC)).timestamp()],
    )
    groups: dict[str, list[_ScoredItem]] = {}
    for row in rows:
        item = _ScoredItem(*row)
        groups.setdefault(item.group(by), []).append(item)
    return [_delta_of(group, groups[group]) for group in sorted(groups)]


# ----- the other read models -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolUsage:
    tool: str
    calls: int
    failures: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None


def tool_usage(journal: Journal, *, since: datetime | None = None) -> list[ToolUsage]:
    """Calls, failures and latency percentiles per tool."""
    sql_journal = require_sql(journal, "read models")
    sql = "SELECT tool, ok, latency_ms FROM aj_rm_tool_calls"
    params: list[float] = []
    if since is not None:
        sql += f" WHERE recorded_at >= {sql_journal.param}"
        params.append(since.timestamp())
    calls: dict[str, list[Any]] = {}
    for tool, ok, latency in sql_journal.query(sql, params):
        calls.setdefault(tool, []).append((ok, latency))
    found = []
    for tool in sorted(calls):
        latencies = [float(latency) for ok, latency in calls[tool] if ok and latency is not None]
        found.append(
            ToolUsage(
                tool=tool,
                calls=len(calls[tool]),
                failures=sum(1 for ok, _ in calls[tool] if not ok),
                latency_p50_ms=percentile(latencies, 50),
                latency_p95_ms=percentile(latencies, 95),
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class PolicyDecisionCount:
    rule: str
    action: str
    decisions: int
    last_at: datetime


def policy_decisions(journal: Journal) -> list[PolicyDecisionCount]:
    """How often each policy rule allowed, denied or escalated, most frequent first."""
    rows = require_sql(journal, "read models").query(
        "SELECT rule, action, decisions, last_at FROM aj_rm_policy_decisions ORDER BY decisions DESC, rule, action"
    )
    return [PolicyDecisionCount(r[0], r[1], int(r[2]), datetime.fromtimestamp(float(r[3]), UTC)) for r in rows]


@dataclass(frozen=True, slots=True)
class SearchHit:
    position: int
    stream_id: str
    version: int
    type: str
    recorded_at: datetime
    text: str


def search(journal: Journal, text: str, *, limit: int = 20) -> list[SearchHit]:
    """Events whose payload contains every word of `text` (as a phrase), newest first."""
    sql_journal = require_sql(journal, "search")
    words = text.strip()
    if not words:
        raise ProjectionError("search: give some text to look for, e.g. ORD-5521")
    phrase = '"' + words.replace('"', " ") + '"'
    dialect = sql_journal.sql_dialect
    sql = dialect.sql(
        f"SELECT {dialect.search_key}, stream_id, version, type, recorded_at, text FROM aj_rm_search "
        f"WHERE {dialect.search_where} ORDER BY {dialect.search_key} DESC LIMIT ?"
    )
    rows = sql_journal.query(sql, [phrase, limit])
    return [SearchHit(int(r[0]), r[1], int(r[2]), r[3], datetime.fromtimestamp(float(r[4]), UTC), r[5]) for r in rows]
