"""The smaller built-in read models: the approvals queue, tool usage, policy decisions, search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson
from pydantic import ValidationError

from agentjournal.journal import RecordedEvent
from agentjournal.projections.base import Projection, Tx
from agentjournal.runs import RUN_PREFIX, run_id_of
from agentjournal.runs.events import ToolProposed

_DECISION_COLUMNS = (
    "run_id",
    "version",
    "call_id",
    "approval_id",
    "tenant_id",
    "tool",
    "arguments",
    "rule",
    "status",
    "decided_by",
    "reason",
    "proposed_at",
    "decided_at",
    "agent",
    "arguments_hash",
    "expires_at",
)
OPEN_STATUSES = ("proposed", "allowed", "pending", "approved", "rejected", "executing")
"""A call in one of these has not reached its end; the others are final: denied, refused, executed,
failed, observed (a rejection the agent was told about) and closed (its run ended first)."""
_POLICY_STATUS = {"allow": "allowed", "deny": "denied", "require_human_approval": "pending"}
_RUN_ENDS = {"RunCompleted": "completed first", "RunAborted": "was aborted", "RunCancelled": "was cancelled"}


def _arguments(value: Any) -> str:
    return orjson.dumps(value if value is not None else {}, option=orjson.OPT_SORT_KEYS).decode()


class ToolDecisionsProjection(Projection):
    """aj_rm_tool_decisions: every proposed tool call, what the guard and the humans decided, and its end.

    The approvals queue is its rows with status `pending`; the runs a worker must resume are those
    with a row `approved` or `rejected` (a human decided; no worker has acted on it yet). A row
    closes when its call executes, fails, is refused or its run ends (which closes its pending
    approvals in this queue too). Proposals that do not fit the run contract are left out.
    """

    name: ClassVar[str] = "tool_decisions"
    event_types: ClassVar[tuple[str, ...]] = (
        "ToolProposed",
        "PolicyEvaluated",
        "ApprovalRequested",
        "ToolApproved",
        "ToolRejected",
        "ToolClaimed",
        "ToolExecuted",
        "ToolFailed",
        "ObservationCaptured",
        *_RUN_ENDS,
    )
    tables: ClassVar[tuple[str, ...]] = ("aj_rm_tool_decisions",)

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        streams = sorted({e.stream_id for e in events if e.stream_id.startswith(RUN_PREFIX)})
        if not streams:
            return
        run_ids = [run_id_of(stream) for stream in streams]
        statuses = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
        open_rows: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in run_ids}
        for row in tx.select_in(
            f"SELECT {', '.join(_DECISION_COLUMNS)} FROM aj_rm_tool_decisions "
            f"WHERE status IN ({statuses}) AND run_id IN ({{}}) ORDER BY version",
            run_ids,
        ):
            open_rows[row[0]].append(dict(zip(_DECISION_COLUMNS, row, strict=True)))
        changed: dict[tuple[str, int], dict[str, Any]] = {}
        for event in events:
            if not event.stream_id.startswith(RUN_PREFIX):
                continue
            run_id, data = run_id_of(event.stream_id), event.data
            rows = open_rows[run_id]
            if event.type == "ToolProposed":
                try:
                    proposed = ToolProposed.model_validate(data)
                except ValidationError:
                    continue
                row = {
                    "run_id": run_id,
                    "version": event.version,
                    "call_id": proposed.call_id[:200],
                    "approval_id": None,
                    "tenant_id": event.tenant_id,
                    "tool": proposed.tool[:200],
                    "arguments": _arguments(proposed.arguments),
                    "rule": None,
                    "status": "proposed",
                    "decided_by": None,
                    "reason": None,
                    "proposed_at": event.recorded_at.timestamp(),
                    "decided_at": None,
                    "agent": proposed.agent[:200],
                    "arguments_hash": None,
                    "expires_at": None,
                }
                rows.append(row)
                changed[(run_id, event.version)] = row
                continue
            if event.type in _RUN_ENDS:
                ended = _RUN_ENDS[event.type] + (f": {data['reason']}" if data.get("reason") else "")
                for row in rows:
                    row["status"] = "closed"
                    row["reason"] = f"the run {ended}"
                    changed[(run_id, row["version"])] = row
                rows.clear()
                continue
            row = _find_open(rows, data)
            if row is None:
                continue
            _advance(row, event)
            if row["status"] not in OPEN_STATUSES:
                rows.remove(row)
            changed[(run_id, row["version"])] = row
        tx.upsert(
            "aj_rm_tool_decisions",
            _DECISION_COLUMNS,
            ("run_id", "version"),
            [tuple(row[c] for c in _DECISION_COLUMNS) for row in changed.values()],
        )


def _find_open(rows: list[dict[str, Any]], data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The open call an event is about: by its call id, or (a human's decision) by its approval id."""
    call_id, approval_id = data.get("call_id"), data.get("approval_id")
    for row in rows:
        if (call_id is not None and row["call_id"] == str(call_id)) or (
            approval_id is not None and row["approval_id"] == str(approval_id)
        ):
            return row
    return None


def _advance(row: dict[str, Any], event: RecordedEvent) -> None:
    data, kind = event.data, event.type
    if kind == "PolicyEvaluated":
        row["status"] = _POLICY_STATUS.get(str(data.get("action")), row["status"])
        row["rule"] = str(data["rule"])[:200] if data.get("rule") is not None else None
        row["reason"] = data.get("reason")
    elif kind == "ApprovalRequested":
        row["status"] = "pending"
        row["approval_id"] = str(data.get("approval_id") or "")[:200] or None
        row["arguments"] = _arguments(data.get("arguments", {}))
        row["arguments_hash"] = data.get("arguments_hash")
        row["expires_at"] = data.get("expires_at")
    elif kind in ("ToolApproved", "ToolRejected"):
        row["status"] = "approved" if kind == "ToolApproved" else "rejected"
        row["decided_by"] = str(data.get("by") or event.actor or "")[:200] or None
        row["reason"] = data.get("reason", row["reason"])
        row["decided_at"] = event.recorded_at.timestamp()
    elif kind == "ToolClaimed":
        row["status"] = "executing"
    elif kind == "ToolExecuted":
        row["status"] = "executed"
    elif kind == "ToolFailed" and not data.get("will_retry"):
        row["status"] = "failed"
    elif kind == "ObservationCaptured" and not data.get("ok"):
        row["status"] = "observed" if row["status"] == "rejected" else "refused"
        if row["status"] == "refused":
            row["reason"] = data.get("error") or row["reason"]


class ToolUsageProjection(Projection):
    """aj_rm_tool_calls: one row per executed or failed tool call (latency percentiles are taken on read)."""

    name: ClassVar[str] = "tool_usage"
    event_types: ClassVar[tuple[str, ...]] = ("ToolExecuted", "ToolFailed")
    tables: ClassVar[tuple[str, ...]] = ("aj_rm_tool_calls",)

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        rows = []
        for event in events:
            data = event.data
            latency = data.get("latency_ms")
            error = data.get("error")
            rows.append(
                (
                    event.position,
                    run_id_of(event.stream_id),
                    event.tenant_id,
                    str(data.get("tool") or "?")[:200],
                    int(event.type == "ToolExecuted"),
                    float(latency) if isinstance(latency, int | float) and not isinstance(latency, bool) else None,
                    None if error is None else str(error),
                    event.recorded_at.timestamp(),
                )
            )
        tx.executemany(
            "INSERT INTO aj_rm_tool_calls (position, run_id, tenant_id, tool, ok, latency_ms, error, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


class PolicyDecisionsProjection(Projection):
    """aj_rm_policy_decisions: how often each rule allowed, denied or escalated a tool call."""

    name: ClassVar[str] = "policy_decisions"
    event_types: ClassVar[tuple[str, ...]] = ("PolicyEvaluated",)
    tables: ClassVar[tuple[str, ...]] = ("aj_rm_policy_decisions",)

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        counts: dict[tuple[str, str], tuple[int, float]] = {}
        for event in events:
            key = (str(event.data.get("rule") or "(default)")[:200], str(event.data.get("action") or "?")[:200])
            count, _ = counts.get(key, (0, 0.0))
            counts[key] = (count + 1, event.recorded_at.timestamp())
        if not counts:
            return
        stored = {
            (rule, action): int(decisions)
            for rule, action, decisions in tx.fetchall("SELECT rule, action, decisions FROM aj_rm_policy_decisions")
            if (rule, action) in counts
        }
        tx.upsert(
            "aj_rm_policy_decisions",
            ("rule", "action", "decisions", "last_at"),
            ("rule", "action"),
            [(rule, action, stored.get((rule, action), 0) + n, at) for (rule, action), (n, at) in counts.items()],
        )


class SearchProjection(Projection):
    """aj_rm_search: the text of every event payload, full-text indexed by the database.

    SQLite FTS5, PostgreSQL tsvector (GIN) and MariaDB FULLTEXT; the indexed text is the
    event type, its stream and every string or number in its payload.
    """

    name: ClassVar[str] = "search"
    tables: ClassVar[tuple[str, ...]] = ("aj_rm_search",)

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        tx.executemany(
            f"INSERT INTO aj_rm_search ({tx.dialect.search_key}, stream_id, version, type, recorded_at, text) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (e.position, e.stream_id, e.version, e.type, e.recorded_at.timestamp(), searchable_text(e))
                for e in events
            ],
        )


SEARCH_TEXT_LIMIT = 100_000
"""Characters of an event indexed for search: PostgreSQL refuses a tsvector over 1 MB."""


def searchable_text(event: RecordedEvent) -> str:
    words: list[str] = [event.type, event.stream_id]
    _collect(event.data, words)
    return " ".join(words)[:SEARCH_TEXT_LIMIT]


def _collect(value: Any, words: list[str]) -> None:
    if isinstance(value, str):
        words.append(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        words.append(str(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, words)
    elif isinstance(value, list):
        for item in value:
            _collect(item, words)
