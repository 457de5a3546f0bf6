"""The smaller built-in read models: the approvals queue, tool usage, policy decisions, search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson

from agentjournal.journal import RecordedEvent
from agentjournal.projections.base import Projection, Tx
from agentjournal.projections.runs import RUN_PREFIX, run_id_of

_CALL_ID_FIELDS = ("call_id", "tool_call_id", "proposal_id")
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
)
_OPEN = ("proposed", "pending")
_POLICY_STATUS = {"allow": "allowed", "deny": "denied", "require_human_approval": "pending"}


def _call_id(data: Mapping[str, Any]) -> str | None:
    for name in _CALL_ID_FIELDS:
        if data.get(name) is not None:
            return str(data[name])[:200]
    return None


class ToolDecisionsProjection(Projection):
    """aj_rm_tool_decisions: every proposed tool call and what became of it.

    The approvals queue is its rows with status `pending` (the policy sent the call to a human
    and nobody has approved or rejected it yet). A decision event finds its proposal by call id
    or by approval id (ApprovalRequested carries both), otherwise it is the run's latest open one.
    """

    name: ClassVar[str] = "tool_decisions"
    event_types: ClassVar[tuple[str, ...]] = (
        "ToolProposed",
        "PolicyEvaluated",
        "ApprovalRequested",
        "ToolApproved",
        "ToolRejected",
    )
    tables: ClassVar[tuple[str, ...]] = ("aj_rm_tool_decisions",)

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        streams = sorted({e.stream_id for e in events if e.stream_id.startswith(RUN_PREFIX)})
        if not streams:
            return
        run_ids = [run_id_of(stream) for stream in streams]
        open_rows: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in run_ids}
        for row in tx.select_in(
            f"SELECT {', '.join(_DECISION_COLUMNS)} FROM aj_rm_tool_decisions "
            "WHERE status IN ('proposed', 'pending') AND run_id IN ({}) ORDER BY version",
            run_ids,
        ):
            open_rows[row[0]].append(dict(zip(_DECISION_COLUMNS, row, strict=True)))
        changed: dict[tuple[str, int], dict[str, Any]] = {}
        for event in events:
            if not event.stream_id.startswith(RUN_PREFIX):
                continue
            run_id, data = run_id_of(event.stream_id), event.data
            if event.type == "ToolProposed":
                row = {
                    "run_id": run_id,
                    "version": event.version,
                    "call_id": _call_id(data),
                    "approval_id": None,
                    "tenant_id": event.tenant_id,
                    "tool": str(data.get("tool") or "?")[:200],
                    "arguments": orjson.dumps(data.get("arguments", {}), option=orjson.OPT_SORT_KEYS).decode(),
                    "rule": None,
                    "status": "proposed",
                    "decided_by": None,
                    "reason": None,
                    "proposed_at": event.recorded_at.timestamp(),
                    "decided_at": None,
                }
                open_rows[run_id].append(row)
                changed[(run_id, event.version)] = row
                continue
            row = _find_open(open_rows[run_id], _call_id(data), data.get("approval_id"))
            if row is None:
                continue
            if event.type == "PolicyEvaluated":
                row["status"] = _POLICY_STATUS.get(str(data.get("action")), row["status"])
                row["rule"] = str(data["rule"])[:200] if data.get("rule") is not None else None
                row["reason"] = data.get("reason")
            elif event.type == "ApprovalRequested":
                row["status"] = "pending"
                row["approval_id"] = str(data.get("approval_id") or "")[:200] or None
            else:
                row["status"] = "approved" if event.type == "ToolApproved" else "rejected"
                decided_by = data.get("by") or data.get("approved_by") or data.get("rejected_by") or event.actor
                row["decided_by"] = str(decided_by or "")[:200] or None
                row["reason"] = data.get("reason", row["reason"])
                row["decided_at"] = event.recorded_at.timestamp()
            if row["status"] not in _OPEN:
                open_rows[run_id].remove(row)
            changed[(run_id, row["version"])] = row
        tx.upsert(
            "aj_rm_tool_decisions",
            _DECISION_COLUMNS,
            ("run_id", "version"),
            [tuple(row[c] for c in _DECISION_COLUMNS) for row in changed.values()],
        )


def _find_open(rows: list[dict[str, Any]], call_id: str | None, approval_id: Any) -> dict[str, Any] | None:
    """The open proposal a decision is about: by call id, by approval id, else the run's latest."""
    for row in rows:
        if (call_id is not None and row["call_id"] == call_id) or (
            approval_id is not None and row["approval_id"] == str(approval_id)
        ):
            return row
    return rows[-1] if rows else None


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
        key = "rowid" if tx.dialect == "sqlite" else "position"  # FTS5 keys its rows by rowid
        tx.executemany(
            f"INSERT INTO aj_rm_search ({key}, stream_id, version, type, recorded_at, text) VALUES (?, ?, ?, ?, ?, ?)",
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
