"""Human approvals: list the calls a policy sent to a human, approve or reject them.

A decision is an event on the run (ToolApproved / ToolRejected) with the reviewer and the
reason, bound to the hash of the exact arguments the reviewer was shown. It is usable once
(only a pending approval can be decided, and the append is checked against the run's
version) and it can expire. Deciding does not run anything: the worker that resumes the run
(`Runtime.resume`, `agentjournal runs resume`) executes the approved call, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentjournal.agents.events import ToolApproved, ToolRejected, register_run_events
from agentjournal.agents.state import RunState
from agentjournal.journal import ConcurrencyError, Journal, JournalError, NewEvent
from agentjournal.model import Repository

MAX_TRIES = 10
MIN_HASH_PREFIX = 12
"""`--hash` may be the first 12 (or more) hex digits of the arguments hash, as `approvals list` shows it."""


class ApprovalError(JournalError, ValueError):
    """An approval that cannot be decided: unknown, already decided, expired, or shown other arguments."""


@dataclass(frozen=True)
class Approval:
    approval_id: str
    run_id: str
    agent: str
    user_id: str | None
    tool: str
    arguments: dict[str, Any]
    arguments_hash: str
    requested_at: str
    expires_at: str | None
    status: str
    """pending | approved | rejected | expired"""
    by: str | None
    reason: str | None


def _view(state: RunState, approval: dict[str, Any]) -> Approval:
    status = approval["status"]
    if status == "pending" and _is_expired(approval.get("expires_at")):
        status = "expired"
    return Approval(
        approval_id=approval["approval_id"],
        run_id=state.run_id,
        agent=state.agent,
        user_id=state.user_id,
        tool=approval["tool"],
        arguments=approval["arguments"],
        arguments_hash=approval["arguments_hash"],
        requested_at=approval["requested_at"],
        expires_at=approval.get("expires_at"),
        status=status,
        by=approval.get("by"),
        reason=approval.get("reason"),
    )


def _is_expired(expires_at: str | None, now: datetime | None = None) -> bool:
    return expires_at is not None and datetime.fromisoformat(expires_at) <= (now or datetime.now(UTC))


def list_approvals(journal: Journal, *, status: str | None = "pending") -> list[Approval]:
    """Approvals of every run, oldest request first; `status=None` lists all of them."""
    register_run_events(journal.registry)
    repository = Repository(journal, RunState)
    runs: dict[str, None] = {}
    for event in journal.iter_all(types=["ApprovalRequested"]):
        runs.setdefault(event.stream_id, None)
    found: list[Approval] = []
    for stream_id in runs:
        state = repository.load(stream_id)
        found.extend(_view(state, approval) for approval in state.approvals.values())
    return [approval for approval in found if status is None or approval.status == status]


def find_approval(journal: Journal, approval_id: str) -> tuple[RunState, dict[str, Any]]:
    """The run that requested `approval_id`, folded now, and the approval in it."""
    register_run_events(journal.registry)
    for event in journal.iter_all(types=["ApprovalRequested"]):
        if event.data.get("approval_id") == approval_id:
            state = Repository(journal, RunState).load(event.stream_id)
            return state, state.approvals[approval_id]
    raise ApprovalError(f"no approval {approval_id!r} in {journal.url}; `agentjournal approvals list` shows them")


def approve(journal: Journal, approval_id: str, *, by: str, reason: str, arguments_hash: str | None = None) -> Approval:
    """Approve the call; `arguments_hash` (or its first 12+ hex digits), when the reviewer's screen shows it,
    must be the hash of the arguments that were requested."""
    return _decide(journal, approval_id, by, reason, approved=True, shown_hash=arguments_hash)


def reject(journal: Journal, approval_id: str, *, by: str, reason: str) -> Approval:
    return _decide(journal, approval_id, by, reason, approved=False, shown_hash=None)


def _decide(
    journal: Journal, approval_id: str, by: str, reason: str, *, approved: bool, shown_hash: str | None
) -> Approval:
    if not by or not by.strip():
        raise ApprovalError("a decision needs the reviewer's name (--by NAME)")
    if not reason or not reason.strip():
        raise ApprovalError("a decision needs a reason (--reason TEXT)")
    for _ in range(MAX_TRIES):
        state, approval = find_approval(journal, approval_id)
        where = f"approval {approval_id} ({approval['tool']} in run {state.run_id})"
        if approval["status"] != "pending":
            raise ApprovalError(f"{where} was already {approval['status']} by {approval['by']}: {approval['reason']}")
        if state.finished:
            raise ApprovalError(f"{where}: the run has already {state.status}")
        if _is_expired(approval.get("expires_at")):
            raise ApprovalError(f"{where} expired at {approval['expires_at']}")
        if shown_hash is not None and (
            len(shown_hash) < MIN_HASH_PREFIX or not approval["arguments_hash"].startswith(shown_hash.lower())
        ):
            raise ApprovalError(
                f"{where}: the arguments you were shown (hash {shown_hash[:12]}…) are not the requested ones "
                f"(hash {approval['arguments_hash'][:12]}…); nothing was approved"
            )
        payload: ToolApproved | ToolRejected = (
            ToolApproved(
                approval_id=approval_id,
                by=by,
                reason=reason,
                tool=approval["tool"],
                arguments_hash=approval["arguments_hash"],
            )
            if approved
            else ToolRejected(approval_id=approval_id, by=by, reason=reason, tool=approval["tool"])
        )
        requested = next(
            event
            for event in journal.read_stream(state.stream_id, backwards=True)
            if event.type == "ApprovalRequested" and event.data.get("approval_id") == approval_id
        )
        event = NewEvent(
            type(payload).__name__,
            payload.model_dump(mode="json"),
            actor=by,
            tenant_id=state.tenant_id,
            correlation_id=state.correlation_id,
            causation_id=requested.event_id,
        )
        try:
            journal.append(state.stream_id, [event], expected_version=state.version)
        except ConcurrencyError:
            continue  # the run moved (another step, another reviewer): look again
        state, approval = find_approval(journal, approval_id)
        return _view(state, approval)
    raise ApprovalError(f"approval {approval_id}: the run kept changing; try again")


def ready_runs(journal: Journal) -> list[str]:
    """Runs with a human decision that no worker has acted on yet (what a resume loop picks up)."""
    register_run_events(journal.registry)
    repository = Repository(journal, RunState)
    streams: dict[str, None] = {}
    for event in journal.iter_all(types=["ToolApproved", "ToolRejected"]):
        streams.setdefault(event.stream_id, None)
    ready = []
    for stream_id in streams:
        state = repository.load(stream_id)
        decided = [
            approval
            for approval in state.approvals.values()
            if approval["status"] != "pending" and state.calls[approval["call_id"]]["status"] != "observed"
        ]
        if decided and not state.finished:
            ready.append(state.run_id)
    return ready
