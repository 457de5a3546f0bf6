"""The runs read model: one row per agent run, from the run contract's own fold (RunSummary).

A run is recognised by its contract: a `run-` stream whose first event is the contract's
RunStarted gets a row; any other `run-` stream (a user's own events) is left out. Each row
keeps its RunSummary as JSON and folds it on, batch by batch, so its columns (status, what it
waits for, counters, times) are computed exactly as RunState computes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import orjson

from agentjournal.journal import RecordedEvent
from agentjournal.projections.base import Projection, Tx
from agentjournal.runs import RUN_PREFIX, RunSummary, is_run_start, run_id_of, upcast

COLUMNS = (
    "run_id",
    "stream_id",
    "tenant_id",
    "agent",
    "agent_version",
    "model",
    "prompt_version",
    "route",
    "policy_version",
    "status",
    "end_reason",
    "started_at",
    "ended_at",
    "duration_ms",
    "steps",
    "model_calls",
    "tool_calls",
    "tool_failures",
    "handoffs",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "first_action_at",
    "time_to_first_action_ms",
    "policy_denials",
    "policy_escalations",
    "approvals",
    "rejections",
    "fallback",
    "human_takeover",
    "budget_exceeded",
    "last_position",
    "user_id",
    "active_agent",
    "last_event_at",
    "waiting_for",
    "summary",
)


def row_of(summary: RunSummary, stream_id: str, last_position: int) -> tuple[Any, ...]:
    """A run's row, every column derived from its summary."""
    m = summary.metrics
    started, ended, acted = summary.started_at, summary.ended_at, summary.first_action_at
    values: dict[str, Any] = {
        "run_id": summary.run_id or run_id_of(stream_id),
        "stream_id": stream_id,
        "tenant_id": summary.tenant_id,
        "agent": _text(summary.root_agent),
        "agent_version": _text(summary.agent_version),
        "model": _text(summary.model),
        "prompt_version": _text(summary.prompt_version),
        "route": _text(summary.route),
        "policy_version": _text(summary.policy_version),
        "status": summary.status,
        "end_reason": summary.end_reason,
        "started_at": started,
        "ended_at": ended,
        "duration_ms": (ended - started) * 1000.0 if started is not None and ended is not None else None,
        "steps": summary.events,
        "model_calls": m.model_calls,
        "tool_calls": m.tool_calls + m.tool_failures,
        "tool_failures": m.tool_failures,
        "handoffs": m.handoffs,
        "input_tokens": m.input_tokens,
        "output_tokens": m.output_tokens,
        "cost_usd": m.cost_usd,
        "first_action_at": acted,
        "time_to_first_action_ms": (acted - started) * 1000.0 if started is not None and acted is not None else None,
        "policy_denials": m.denials,
        "policy_escalations": m.approvals_required,
        "approvals": m.approvals,
        "rejections": m.rejections,
        "fallback": int(summary.outcome == "fallback"),
        "human_takeover": int(summary.human_takeover),
        "budget_exceeded": m.budget_exceeded,
        "last_position": last_position,
        "user_id": _text(summary.user_id),
        "active_agent": _text(summary.agent),
        "last_event_at": summary.last_event_at,
        "waiting_for": summary.waiting_for,
        "summary": orjson.dumps(summary.to_dict()).decode(),
    }
    return tuple(values[column] for column in COLUMNS)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:200]


class RunsProjection(Projection):
    """aj_rm_runs: who, what, where it stands, what it waits for, its counters and times."""

    name: ClassVar[str] = "runs"
    tables: ClassVar[tuple[str, ...]] = ("aj_rm_runs",)

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        first_version: dict[str, int] = {}
        for event in events:
            if event.stream_id.startswith(RUN_PREFIX):
                first_version.setdefault(event.stream_id, event.version)
        # A run whose first event here is version 1 has no row yet: only the others are looked up.
        known = sorted(run_id_of(stream) for stream, version in first_version.items() if version > 1)
        summaries: dict[str, RunSummary] = {
            stream_id: RunSummary.from_dict(orjson.loads(summary))
            for stream_id, summary in tx.select_in(
                "SELECT stream_id, summary FROM aj_rm_runs WHERE run_id IN ({})", known
            )
        }
        positions: dict[str, int] = {}
        for event in events:
            if event.stream_id not in first_version:
                continue
            summary = summaries.get(event.stream_id)
            if summary is None:
                if not is_run_start(event):
                    continue  # not a run of the contract (or its start was never seen)
                summary = summaries[event.stream_id] = RunSummary()
            summary.apply(upcast(event))
            positions[event.stream_id] = event.position
        rows = [row_of(summaries[stream], stream, position) for stream, position in positions.items()]
        tx.upsert("aj_rm_runs", COLUMNS, ("run_id",), rows)
