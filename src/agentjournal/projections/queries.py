"""Operational questions about runs, answered from the read models: which runs there are, which wait
for a human, which a worker must resume, seed 002's per-agent metrics.

Each query first brings the read models it reads up to the journal's head (`refresh`), reading
only the events appended since their checkpoints, so its cost does not grow with the journal's
history and an answer never misses a run that was just written. A worker (`agentjournal worker`)
may be applying the same projections at the same moment: the checkpoint's compare-and-set
keeps every event applied once, and the refresh simply tries again.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from agentjournal.journal import Journal
from agentjournal.journal.backends.sql import SQLJournal
from agentjournal.projections.base import AnyProjection, Projection, ProjectionError, require_sql
from agentjournal.projections.read_models import ToolDecisionsProjection
from agentjournal.projections.runner import ProjectionRunner
from agentjournal.projections.runs import RunsProjection
from agentjournal.runs.summary import FINISHED

__all__ = [
    "AgentMetrics",
    "Approval",
    "RunRow",
    "agent_metrics",
    "approvals",
    "find_approval",
    "list_runs",
    "refresh",
    "runs_to_resume",
]

_TRIES = 5
_runners: weakref.WeakKeyDictionary[Journal, dict[str, ProjectionRunner]] = weakref.WeakKeyDictionary()
_runners_lock = threading.Lock()


def refresh(journal: Journal, *projections: AnyProjection, progress: Callable[[str, int], None] | None = None) -> None:
    """Apply whatever the journal holds beyond these projections' checkpoints (runners are kept per journal).

    `progress(name, position)` is called after each batch a projection applies.
    """
    for projection in projections:
        with _runners_lock:
            runners = _runners.setdefault(journal, {})
            runner = runners.get(projection.name)
            if runner is None:
                runner = runners[projection.name] = ProjectionRunner(journal, projection)
        for attempt in range(_TRIES):
            try:
                runner.catch_up(None if progress is None else partial(progress, projection.name))
                break
            except ProjectionError:  # another runner moved the checkpoint meanwhile: read on from there
                if attempt == _TRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))


def _fresh(journal: Journal, *projections: Projection) -> SQLJournal:
    sql_journal = require_sql(journal, "run queries")
    refresh(sql_journal, *projections)
    return sql_journal


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


# ----- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: str
    status: str
    agent: str | None
    """The active agent (after any handoff)."""
    root_agent: str | None
    user_id: str | None
    tenant_id: str | None
    started_at: datetime | None
    last_event_at: datetime | None
    waiting_for: str | None
    """approval, worker, claim or None."""
    waiting_on: str | None
    """What exactly: the approval ids, or the worker holding a claim (and until when)."""
    events: int
    cost_usd: float
    end_reason: str | None


_RUN_COLUMNS = (
    "run_id, status, active_agent, agent, user_id, tenant_id, started_at, last_event_at, waiting_for, "
    "summary, steps, cost_usd, end_reason"
)


def list_runs(
    journal: Journal,
    *,
    status: str | Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    agent: str | None = None,
    route: str | None = None,
    tenant_id: str | None = None,
    run_ids: Sequence[str] | None = None,
    limit: int | None = 100,
) -> list[RunRow]:
    """Runs, most recently active first.

    `status` is one of new, running, waiting_approval, completed, aborted, cancelled (or
    `unfinished`), or several of them; `since` and `until` bound when a run started (until
    excluded); `agent` is the agent a run started with; `limit=None` returns every match.
    """
    sql_journal = _fresh(journal, RunsProjection())
    p = sql_journal.param
    conditions: list[str] = []
    params: list[Any] = []

    def one_of(column: str, values: Sequence[str]) -> None:
        conditions.append(f"{column} IN ({', '.join(p for _ in values)})" if values else "1 = 0")
        params.extend(values)

    if status == "unfinished":
        conditions.append(f"status NOT IN ({', '.join(p for _ in FINISHED)})")
        params.extend(sorted(FINISHED))
    elif isinstance(status, str):
        one_of("status", [status])
    elif status is not None:
        one_of("status", list(status))
    for column, value in (("agent", agent), ("route", route), ("tenant_id", tenant_id)):
        if value is not None:
            one_of(column, [value])
    if run_ids is not None:
        one_of("run_id", [run_id.removeprefix("run-") for run_id in run_ids])
    if since is not None:
        conditions.append(f"started_at >= {p}")
        params.append(since.timestamp())
    if until is not None:
        conditions.append(f"started_at < {p}")
        params.append(until.timestamp())
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = f"SELECT {_RUN_COLUMNS} FROM aj_rm_runs{where} ORDER BY last_event_at DESC, run_id"
    if limit is not None:
        sql += f" LIMIT {p}"
        params.append(limit)
    return [_run_row(row) for row in sql_journal.query(sql, params)]


def _run_row(row: Sequence[Any]) -> RunRow:
    summary = orjson.loads(row[9]) if row[9] else {}
    waiting_on = None
    if row[8] == "approval":
        waiting_on = ", ".join(summary.get("pending_approvals") or ())
    elif row[8] == "claim":
        claims = summary.get("claims") or {}
        waiting_on = ", ".join(
            f"{call} by {claim['worker']} until {claim['expires_at'][:19]}" for call, claim in claims.items()
        )
    elif row[8] == "worker":
        waiting_on = ", ".join(summary.get("decided_calls") or ())
    return RunRow(
        run_id=row[0],
        status=row[1],
        agent=row[2],
        root_agent=row[3],
        user_id=row[4],
        tenant_id=row[5],
        started_at=_time(row[6]),
        last_event_at=_time(row[7]),
        waiting_for=row[8],
        waiting_on=waiting_on,
        events=int(row[10]),
        cost_usd=float(row[11]),
        end_reason=row[12],
    )


def runs_to_resume(journal: Journal, *, stalled_after: float | None = None) -> list[str]:
    """Runs a worker must pick up: a human decided (or an approval expired) and nobody acted on it yet; and, with
    `stalled_after` seconds, unfinished runs not waiting for a human that made no progress for that long
    (a crashed worker's run, a claim that was never finished). Oldest first."""
    sql_journal = _fresh(journal, RunsProjection(), ToolDecisionsProjection())
    p = sql_journal.param
    finished = ", ".join(p for _ in FINISHED)
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    ready = [
        row[0]
        for row in sql_journal.query(
            "SELECT d.run_id, min(coalesce(d.decided_at, d.proposed_at)) FROM aj_rm_tool_decisions d "
            "JOIN aj_rm_runs r ON r.run_id = d.run_id "
            f"WHERE (d.status IN ('approved', 'rejected') OR (d.status = 'pending' AND d.expires_at < {p})) "
            f"AND r.status NOT IN ({finished}) "
            "GROUP BY d.run_id ORDER BY min(coalesce(d.decided_at, d.proposed_at)), d.run_id",
            [now, *sorted(FINISHED)],
        )
    ]
    if stalled_after is None:
        return ready
    if stalled_after < 0:
        raise ProjectionError(f"stalled_after must be 0 or more seconds, got {stalled_after}")
    stalled = sql_journal.query(
        f"SELECT run_id FROM aj_rm_runs WHERE status = 'running' AND last_event_at < {p} "
        "AND (waiting_for IS NULL OR waiting_for <> 'approval') ORDER BY last_event_at, run_id",
        [time.time() - stalled_after],
    )
    return list(dict.fromkeys([*ready, *(row[0] for row in stalled)]))


# ----- approvals --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Approval:
    approval_id: str
    run_id: str
    agent: str | None
    user_id: str | None
    tenant_id: str | None
    tool: str
    arguments: dict[str, Any]
    arguments_hash: str
    requested_at: datetime
    expires_at: str | None
    status: str
    """pending | expired | approved | rejected | closed (its run ended first)"""
    by: str | None
    reason: str | None


_APPROVAL_COLUMNS = (
    "d.approval_id, d.run_id, d.agent, r.user_id, d.tenant_id, d.tool, d.arguments, d.arguments_hash, "
    "d.proposed_at, d.expires_at, d.status, d.decided_by, d.reason"
)
_APPROVAL_STATUS = {
    "pending": "pending",
    "approved": "approved",
    "executing": "approved",
    "executed": "approved",
    "failed": "approved",
    "rejected": "rejected",
    "observed": "rejected",
    "refused": "approved",
    "closed": "closed",
}


def approvals(journal: Journal, *, status: str | None = "pending", limit: int | None = None) -> list[Approval]:
    """Approvals of every run, oldest request first; `status=None` lists all of them."""
    sql_journal = _fresh(journal, RunsProjection(), ToolDecisionsProjection())
    p = sql_journal.param
    sql = (
        f"SELECT {_APPROVAL_COLUMNS} FROM aj_rm_tool_decisions d LEFT JOIN aj_rm_runs r ON r.run_id = d.run_id "
        "WHERE d.approval_id IS NOT NULL"
    )
    params: list[Any] = []
    if status in ("pending", "expired"):
        sql += " AND d.status = 'pending'"
    sql += " ORDER BY d.proposed_at, d.run_id"
    if limit is not None:
        sql += f" LIMIT {p}"
        params.append(limit)
    found = [_approval(row) for row in sql_journal.query(sql, params)]
    return [approval for approval in found if status is None or approval.status == status]


def find_approval(journal: Journal, approval_id: str) -> Approval | None:
    """One approval by id, from the read model (None when there is none)."""
    sql_journal = _fresh(journal, RunsProjection(), ToolDecisionsProjection())
    rows = sql_journal.query(
        f"SELECT {_APPROVAL_COLUMNS} FROM aj_rm_tool_decisions d LEFT JOIN aj_rm_runs r ON r.run_id = d.run_id "
        f"WHERE d.approval_id = {sql_journal.param}",
        [approval_id],
    )
    return _approval(rows[0]) if rows else None


def _approval(row: Sequence[Any]) -> Approval:
    status = _APPROVAL_STATUS.get(row[10], row[10])
    expires_at = row[9]
    if status == "pending" and expires_at is not None and datetime.fromisoformat(expires_at) <= datetime.now(UTC):
        status = "expired"
    return Approval(
        approval_id=row[0],
        run_id=row[1],
        agent=row[2],
        user_id=row[3],
        tenant_id=row[4],
        tool=row[5],
        arguments=orjson.loads(row[6]),
        arguments_hash=row[7] or "",
        requested_at=datetime.fromtimestamp(float(row[8]), UTC),
        expires_at=expires_at,
        status=status,
        by=row[11],
        reason=row[12],
    )


# ----- seed 002's agent metrics -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentMetrics:
    agent: str
    conversations: int
    avg_duration_ms: float | None
    avg_tools_per_conversation: float
    handoffs: int


def agent_metrics(journal: Journal, *, since: datetime, until: datetime | None = None) -> list[AgentMetrics]:
    """Seed 002's dashboard query: per active agent, the conversations started in [since, until),
    their average duration (finished ones), average tool calls, and handoffs."""
    sql_journal = _fresh(journal, RunsProjection())
    p = sql_journal.param
    rows = sql_journal.query(
        "SELECT coalesce(active_agent, agent, '(none)'), count(*), avg(duration_ms), avg(tool_calls), sum(handoffs) "
        f"FROM aj_rm_runs WHERE started_at >= {p} AND started_at < {p} "
        "GROUP BY coalesce(active_agent, agent, '(none)') ORDER BY 1",
        [since.timestamp(), (until or datetime.now(UTC)).timestamp()],
    )
    return [
        AgentMetrics(row[0], int(row[1]), None if row[2] is None else float(row[2]), float(row[3]), int(row[4]))
        for row in rows
    ]
