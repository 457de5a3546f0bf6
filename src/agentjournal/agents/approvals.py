"""Human approvals: list the calls a policy sent to a human, approve or reject them.

A decision is an event on the run (ToolApproved / ToolRejected) with the reviewer and the
reason, bound to the hash of the exact arguments the reviewer was shown. It is usable once
(only a pending approval can be decided, and the append is checked against the run's
version) and it can expire. Deciding does not run anything: the worker that resumes the run
(`Runtime.resume`, `agentjournal runs resume`) executes the approved call, once.

Listing and finding approvals read the approvals read model (projections.queries), so their
cost does not grow with the journal's history; deciding folds the one run concerned.
"""

from __future__ import annotations

from datetime import UTC, datetime

from agentjournal.journal import ConcurrencyError, Journal, JournalError, StreamClosedError
from agentjournal.model import Repository
from agentjournal.projections.queries import Approval, approvals, find_approval
from agentjournal.runs import RunState, new_event, run_stream
from agentjournal.runs import events as ev

__all__ = ["Approval", "ApprovalError", "approve", "list_approvals", "record_decision", "reject"]

MAX_TRIES = 10
MIN_HASH_PREFIX = 12
"""`--hash` may be the first 12 (or more) hex digits of the arguments hash, as `approvals list` shows it."""


class ApprovalError(JournalError, ValueError):
    """An approval that cannot be decided: unknown, already decided, expired, or shown other arguments."""


def list_approvals(journal: Journal, *, status: str | None = "pending") -> list[Approval]:
    """Approvals of every run, oldest request first; `status=None` lists all of them."""
    return approvals(journal, status=status)


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
    if shown_hash is not None and (len(shown_hash) < MIN_HASH_PREFIX or not _is_hex(shown_hash)):
        raise ApprovalError(
            f"--hash {shown_hash!r}: give at least the first {MIN_HASH_PREFIX} hex digits of the arguments hash, "
            "as `agentjournal approvals list` shows it"
        )
    found = find_approval(journal, approval_id)
    if found is None:
        raise ApprovalError(f"no approval {approval_id!r} in {journal.url}; `agentjournal approvals list` shows them")
    record_decision(journal, found.run_id, approval_id, by=by, reason=reason, approved=approved, shown_hash=shown_hash)
    decided = find_approval(journal, approval_id)
    if decided is None:  # pragma: no cover - the read model had it a moment ago
        raise ApprovalError(f"approval {approval_id} vanished from the read model")
    return decided


def record_decision(
    journal: Journal,
    run_id: str,
    approval_id: str,
    *,
    by: str,
    reason: str,
    approved: bool,
    shown_hash: str | None = None,
) -> None:
    """Append the human's decision on `approval_id` to run `run_id`, checked against the run's state."""
    repository = Repository(journal, RunState)
    for _ in range(MAX_TRIES):
        state = repository.load(run_stream(run_id))
        approval = state.approvals.get(approval_id)
        if approval is None:
            raise ApprovalError(f"run {run_id} has no approval {approval_id!r}")
        where = f"approval {approval_id} ({approval.tool} in run {state.run_id})"
        if approval.status == "closed":
            raise ApprovalError(f"{where}: the run has already {state.status}")
        if approval.status != "pending":
            raise ApprovalError(f"{where} was already {approval.status} by {approval.by}: {approval.reason}")
        if approval.expired(datetime.now(UTC)):
            raise ApprovalError(f"{where} expired at {approval.expires_at}")
        if shown_hash is not None and not approval.arguments_hash.startswith(shown_hash.lower()):
            raise ApprovalError(
                f"{where}: the arguments you were shown (hash {shown_hash[:12]}…) are not the requested ones "
                f"(hash {approval.arguments_hash[:12]}…); nothing was approved"
            )
        payload: ev.ToolApproved | ev.ToolRejected = (
            ev.ToolApproved(
                approval_id=approval_id,
                by=by,
                reason=reason,
                tool=approval.tool,
                arguments_hash=approval.arguments_hash,
            )
            if approved
            else ev.ToolRejected(approval_id=approval_id, by=by, reason=reason, tool=approval.tool)
        )
        event = new_event(
            payload,
            actor=by,
            tenant_id=state.tenant_id,
            correlation_id=state.correlation_id,
            causation_id=approval.requested_id,
        )
        try:
            journal.append(state.stream_id, [event], expected_version=state.version)
        except (ConcurrencyError, StreamClosedError):
            continue  # the run moved (another step, another reviewer, it finished): look again
        return
    raise ApprovalError(f"approval {approval_id}: the run kept changing; try again")


def _is_hex(text: str) -> bool:
    return all(char in "0123456789abcdefABCDEF" for char in text)
