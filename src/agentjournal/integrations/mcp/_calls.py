"""One MCP tool call through the journal: proposed, decided, claimed, sent, and its result recorded.

Shared by the client wrapper (the call goes to a server over a session) and the server middleware
(the call goes to the tool function): `execute(run, call_id, arguments)` is what actually calls the
tool. A call to a tool not marked read-only is claimed first, which writes its proposal, decision and
claim before it is sent; a read-only call's proposal and decision are written with its result (the
recorder buffers them until the next write), so it costs one write. Everything is written through
the run's `RecordedRun` (so its spans, its replay and the human decisions it picks up apply), on a
worker thread: the event loop never waits for the journal.
A call takes two trips to that thread, one before it is sent and one after, one at a time per run
(parallel calls in one run cannot race its version). On replay nothing is sent: the call is answered
with the result the recording has.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio
import anyio.to_thread
from mcp.types import CallToolResult, TextContent, Tool
from pydantic import BaseModel

from agentjournal.agents.decider import arguments_hash
from agentjournal.integrations.recorder import RecordedRun, RecorderError, RunRecorder, ToolDecision
from agentjournal.integrations.replay import RecordedToolError
from agentjournal.journal.envelope import canonical_json
from agentjournal.runs import RunState, run_stream
from agentjournal.runs import events as ev

APPROVAL_META_KEY = "io.agentjournal/approval"
"""`_meta` key of a `tools/call` that resumes a held call on a journaled server: the approval id."""
DECISION_META_KEY = "io.agentjournal/decision"
"""`_meta` key of a result agentjournal gave instead of calling the tool (see `Withheld`)."""
RUN_META_KEY = "io.agentjournal/run"
"""`_meta` key a journaled client adds to each call: the run, the call, the event that sent it."""
WORKER = f"{socket.gethostname()}/{os.getpid()}/mcp"
"""Who claims the calls this process sends (the contract's `host/pid/suffix`)."""

Execute = Callable[[RecordedRun, str, dict[str, Any]], Awaitable[Any]]
"""`execute(run, call_id, arguments)` calls the tool; returns a CallToolResult (or its wire dict, on a server)."""
Hint = Callable[["Withheld"], str]
"""How the caller resumes a held call, in the words of its side (client or server)."""

T = TypeVar("T")
logger = logging.getLogger(__name__)

_locks: weakref.WeakKeyDictionary[RecordedRun, threading.Lock] = weakref.WeakKeyDictionary()
_locks_lock = threading.Lock()


class ResultNotRecorded(RecorderError):
    """The tool ran, but agentjournal could not record its result (the database went away, ...).

    The run shows the call without a result (claimed, when it took a claim). `result` is what the
    tool returned, so the caller can decide what to do with an effect that happened."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Withheld:
    """A call agentjournal did not send: the policy denied it, a human rejected it, or it waits for a human.

    It travels in the `_meta` of the error result the caller got instead (`withheld(result)` reads it)."""

    action: Literal["deny", "require_human_approval"]
    reason: str
    run_id: str
    call_id: str
    tool: str
    rule: str | None = None
    approval_id: str | None = None

    def to_meta(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "run_id": self.run_id,
            "call_id": self.call_id,
            "tool": self.tool,
            "rule": self.rule,
            "approval_id": self.approval_id,
        }


def withheld(result: CallToolResult | Mapping[str, Any]) -> Withheld | None:
    """What agentjournal decided instead of calling the tool, or None when the tool was called."""
    meta = result.meta if isinstance(result, CallToolResult) else result.get("_meta")
    found = (meta or {}).get(DECISION_META_KEY)
    if not isinstance(found, Mapping) or found.get("action") not in ("deny", "require_human_approval"):
        return None
    try:
        return Withheld(
            action=found["action"],
            reason=str(found["reason"]),
            run_id=str(found["run_id"]),
            call_id=str(found["call_id"]),
            tool=str(found["tool"]),
            rule=found.get("rule"),
            approval_id=found.get("approval_id"),
        )
    except KeyError:
        return None


# ----- running recorder calls off the event loop ------------------------------------------------


def _lock(run: RecordedRun) -> threading.Lock:
    with _locks_lock:
        lock = _locks.get(run)
        if lock is None:
            lock = _locks[run] = threading.Lock()
        return lock


async def offload(run: RecordedRun, record: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `record(*args, **kwargs)` (which appends to `run`) on a worker thread, one at a time per run."""
    lock = _lock(run)

    def locked() -> T:
        with lock:
            return record(*args, **kwargs)

    return await anyio.to_thread.run_sync(locked)


def read_only(tool: Tool | None) -> bool:
    """Whether the server says so (`readOnlyHint`); a call to any other tool is claimed before it is sent,
    so the journal holds the call (proposed, allowed, claimed) before the tool can act."""
    return tool is not None and tool.annotations is not None and tool.annotations.read_only_hint is True


# ----- results ----------------------------------------------------------------------------------


def wire(result: Any) -> dict[str, Any]:
    """A tool's result as the wire carries it (camelCase), without `_meta`: what the run records."""
    if isinstance(result, BaseModel):
        dumped = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    elif isinstance(result, Mapping):
        dumped = dict(result)
    else:
        raise RecorderError(f"an MCP tool call returned {type(result).__name__}, not a result")
    dumped.pop("_meta", None)
    return dumped


def text_of(output: Mapping[str, Any]) -> str:
    """What a person (or a model) reads of a result: its text blocks, else its structured content."""
    texts = [
        str(block.get("text"))
        for block in output.get("content") or ()
        if isinstance(block, Mapping) and block.get("type") == "text"
    ]
    if texts:
        return "\n".join(texts)
    if output.get("structuredContent") is not None:
        return canonical_json(output["structuredContent"]).decode()
    return ""


def error_result(text: str, meta: dict[str, Any] | None = None) -> CallToolResult:
    """An error result the tool did not produce."""
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True, _meta=meta)


def as_result(output: Any, tool: str) -> CallToolResult:
    """A recorded output as the result it was (a run records the result's wire form)."""
    if isinstance(output, Mapping) and "content" in output:
        return CallToolResult.model_validate(output)
    return error_result(f"{tool} gave a result that is not a tool result: {output!r}")


def recorded_result(state: RunState, call_id: str) -> CallToolResult:
    """The result a finished call gave, rebuilt from the run (a retry after a lost reply gets it again)."""
    call = state.calls[call_id]
    if call.status == "executed":
        return as_result(call.output, call.tool)
    return error_result(call.error or f"{call.tool} failed")


def withheld_result(decision: Withheld, hint: Hint) -> CallToolResult:
    if decision.action == "deny":
        text = f"{decision.tool} was not called: {decision.reason}"
    else:
        text = (
            f"{decision.tool} was not called yet: it waits for a human's approval {decision.approval_id}"
            f" ({decision.reason}). Once `agentjournal approvals approve {decision.approval_id}"
            f" --by NAME --reason TEXT` decided it, {hint(decision)}."
        )
    return error_result(text, {DECISION_META_KEY: decision.to_meta()})


# ----- one call: what to do with it (on the worker thread) ----------------------------------------


@dataclass(frozen=True)
class Step:
    """A call that was proposed (or resumed): send it, or answer the caller without sending it."""

    call_id: str
    tool: str
    arguments: dict[str, Any]
    """What to send: the call's arguments; for an approved call, exactly those the reviewer saw."""
    withheld: Withheld | None = None
    """Not sent: denied, rejected, or waiting for a human."""
    answer: CallToolResult | None = None
    """Not sent again: it ran already (a retry), this is its recorded result."""
    replayed: dict[str, Any] | None = None
    """On replay: the recorded outcome (ToolExecuted or ToolFailed data) that answers it."""


def open_call(
    run: RecordedRun,
    tool: str,
    arguments: dict[str, Any],
    *,
    call_id: str | None,
    claim: bool,
    end: bool,
) -> Step:
    """Propose the call and record the policy's decision, and claim it when it is allowed and has a side
    effect. A call with the same tool and arguments that waited for a human is that call again (as with
    `@journaled`): it runs once approved. In a run of its own (`end`), a refused call ends the run."""
    held = call_id if call_id in run.state.calls else _held(run, tool, arguments)
    if held is not None:
        return resume_step(run, held, end=end)
    call_id = call_id or run.matching_call(tool, arguments) or _next_call_id(run)
    decision = run.tool_call(tool, arguments, call_id=call_id)
    if decision.action == "deny":
        if end:
            run.complete(f"{tool} was not called: {decision.reason}", outcome="fallback")
        return Step(decision.call_id, tool, arguments, withheld=_withheld(run, decision, tool))
    if decision.action == "require_human_approval":
        return Step(decision.call_id, tool, arguments, withheld=_withheld(run, decision, tool))
    if claim:
        run.claim(decision.call_id, worker=WORKER)
    return Step(decision.call_id, tool, arguments, replayed=_replayed(run, decision.call_id, tool, arguments))


def resume_step(run: RecordedRun, call_id: str, *, end: bool) -> Step:
    """Where a call that waited for a human stands now: run it once approved (claimed first, with the exact
    arguments the reviewer saw), refuse it once rejected or expired, say it still waits otherwise; a call
    that already ran is answered with its recorded result."""
    for _ in range(2):  # again, when another process claimed the call between our read and our claim
        call = run.state.calls.get(call_id)
        if call is None:
            raise RecorderError(f"run {run.run_id} has no tool call {call_id!r}")
        if call.status in ("waiting_approval", "approved", "claimed"):
            run.refresh()  # a human (or another process) may have moved it since
            call = run.state.calls[call_id]
        if call.status == "waiting_approval":
            approval = run.state.approvals[call.approval_id or ""]
            if not approval.expired():
                waiting = ToolDecision(
                    call_id, "require_human_approval", "waiting for a human", call.rule, approval.approval_id
                )
                return Step(call_id, call.tool, call.arguments, withheld=_withheld(run, waiting, call.tool))
            expired = ev.ToolRejected(
                approval_id=approval.approval_id,
                by="system",
                reason=f"the approval expired at {approval.expires_at}",
                tool=call.tool,
            )
            run.record(expired, "orchestrator", approval.requested_id)
            call = run.state.calls[call_id]
        if call.status == "rejected":
            approval = run.state.approvals[call.approval_id or ""]
            reason = f"{approval.by} rejected the call: {approval.reason}"
            run.observe_refusal(call_id, error_type="rejected_by_human", error=reason)
            if end:
                run.complete(f"{call.tool} was not called: {reason}", outcome="fallback")
            decision = ToolDecision(call_id, "deny", reason, call.rule)
            return Step(call_id, call.tool, call.arguments, withheld=_withheld(run, decision, call.tool))
        if call.status == "refused":
            decision = ToolDecision(call_id, "deny", call.error or "refused", call.rule)
            return Step(call_id, call.tool, call.arguments, withheld=_withheld(run, decision, call.tool))
        if call.status in ("executed", "failed"):
            return Step(call_id, call.tool, call.arguments, answer=recorded_result(run.state, call_id))
        if call.status == "claimed" and call.claim is not None:
            raise RecorderError(
                f"run {run.run_id}: {call.tool} ({call_id}) is being run by {call.claim.worker}"
                f" (claimed until {call.claim.expires_at})"
            )
        if call.status != "approved" or call.approval_id is None:
            raise RecorderError(f"run {run.run_id}: call {call_id} ({call.tool}) did not wait for a human")
        approval = run.state.approvals[call.approval_id]
        shown = approval.arguments_hash
        if arguments_hash(approval.arguments) != shown or approval.approved_hash != shown:
            raise RecorderError(
                f"run {run.run_id}: call {call_id}: the approved arguments are not the ones shown; it was not run"
            )
        try:
            run.claim(call_id, worker=WORKER)
        except RecorderError:
            run.refresh()
            continue
        arguments = dict(approval.arguments)
        return Step(call_id, call.tool, arguments, replayed=_replayed(run, call_id, call.tool, arguments))
    raise RecorderError(f"run {run.run_id}: call {call_id} keeps moving under us; try again")


def _next_call_id(run: RecordedRun) -> str:
    """`mcp-<n>` for the run's n-th call: the same in a replay of the run, so its recorded result is found."""
    number = len(run.state.calls) + 1
    while f"mcp-{number}" in run.state.calls:
        number += 1
    return f"mcp-{number}"


def _held(run: RecordedRun, tool: str, arguments: dict[str, Any]) -> str | None:
    for call in run.state.open_calls():
        if call.tool == tool and call.arguments == arguments and call.approval_id is not None:
            return call.call_id
    return None


def _withheld(run: RecordedRun, decision: ToolDecision, tool: str) -> Withheld:
    action: Literal["deny", "require_human_approval"] = "require_human_approval"
    if decision.action == "deny":
        action = "deny"
    return Withheld(action, decision.reason, run.run_id, decision.call_id, tool, decision.rule, decision.approval_id)


def _replayed(run: RecordedRun, call_id: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
    replay = run.recorder.replay
    return replay.tool_outcome(call_id, tool, arguments) if replay is not None else None


# ----- one call: sending it, recording what came back ----------------------------------------------


async def proceed(run: RecordedRun, step: Step, execute: Execute, *, hint: Hint, end: bool) -> Any:
    """Answer the caller: why the call was withheld, its recorded result, its replayed one, or send it."""
    if step.withheld is not None:
        return withheld_result(step.withheld, hint)
    if step.answer is not None:
        return step.answer
    if step.replayed is not None:
        return await offload(run, _replay, run, step, end)
    return await send(run, step, execute, end=end)


async def send(run: RecordedRun, step: Step, execute: Execute, *, end: bool) -> Any:
    """Send the call and record what came back, or the exception, which is raised. In a run of its own
    (`end`) the trip that records the result also ends the run."""
    started = time.perf_counter()
    try:
        result = await execute(run, step.call_id, step.arguments)
    except BaseException as exc:
        latency = (time.perf_counter() - started) * 1000
        try:
            with anyio.CancelScope(shield=True):
                await offload(run, _record_failure, run, step.call_id, exc, latency, end)
        except Exception as failed:
            raise RecorderError(
                f"run {run.run_id}: {step.tool} failed ({type(exc).__name__}: {exc}) and agentjournal could not"
                f" record it: {failed}"
            ) from exc
        raise
    latency = (time.perf_counter() - started) * 1000
    try:
        output = wire(result)
        await offload(run, _record_result, run, step.call_id, output, latency, end)
    except Exception as failed:
        raise ResultNotRecorded(
            f"run {run.run_id}: {step.tool} ran, but agentjournal could not record its result: {failed}", result
        ) from failed
    return result


def _record_result(run: RecordedRun, call_id: str, output: dict[str, Any], latency_ms: float, end: bool) -> None:
    if output.get("isError") is True:
        error = text_of(output) or "the tool reported an error"
        run.tool_result(call_id, error=error, error_type="tool_error", latency_ms=latency_ms)
    else:
        run.tool_result(call_id, output, latency_ms=latency_ms)
    if end:
        end_with(run, output)


def _record_failure(run: RecordedRun, call_id: str, error: BaseException, latency_ms: float, end: bool) -> None:
    if isinstance(error, Exception):
        kind, text = type(error).__name__, str(error) or type(error).__name__
    else:
        kind, text = "cancelled", f"the call was cancelled ({type(error).__name__})"
    run.tool_result(call_id, error=text, error_type=kind, latency_ms=latency_ms)
    if end:
        end_after(run, error)


def _replay(run: RecordedRun, step: Step, end: bool) -> CallToolResult:
    """The recorded outcome stands in for the server: recorded in the replayed run, and handed back."""
    outcome = step.replayed or {}
    latency = float(outcome.get("latency_ms") or 0.0)
    if outcome.get("type") == "ToolExecuted":
        output = outcome.get("output")
        run.tool_result(step.call_id, output, latency_ms=latency)
        result = as_result(output, step.tool)
    else:
        kind, error = str(outcome.get("error_type") or "error"), str(outcome.get("error") or "")
        run.tool_result(step.call_id, error=error, error_type=kind, latency_ms=latency)
        if kind != "tool_error":  # the call raised then (a timeout, a lost connection): it raises again
            if end:
                end_after(run, RecordedToolError(step.tool, kind, error))
            raise RecordedToolError(step.tool, kind, error)
        result = error_result(error)  # the server answered with an error result then
    if end:
        end_with(run, result)
    return result


# ----- a run of its own ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OneCall:
    """A call recorded as a run of its own (a server's caller, or a client call made outside a run)."""

    recorder: RunRecorder
    agent: str
    user_id: str | None = None
    tenant_id: str | None = None
    tools: tuple[dict[str, Any], ...] = ()


def call_input(tool: str, arguments: Mapping[str, Any]) -> str:
    return f"tools/call {tool} {canonical_json(dict(arguments)).decode()}"


async def one_call_run(
    spec: OneCall,
    tool: str,
    arguments: dict[str, Any],
    execute: Execute,
    *,
    claim: bool,
    hint: Hint,
) -> Any:
    """Start a run for this call, gate and send it, and end the run (unless the call waits for a human).
    The run starts in the caller's event context (its correlation and causation ids, when it set them)."""

    def start_and_open() -> tuple[RecordedRun, Step]:
        run = spec.recorder.start(
            agent=spec.agent,
            input=call_input(tool, arguments),
            tools=spec.tools,
            user_id=spec.user_id,
            tenant_id=spec.tenant_id,
        )
        try:
            return run, open_call(run, tool, arguments, call_id=None, claim=claim, end=True)
        except Exception as exc:
            _end_quietly(run, exc)
            raise

    run, step = await anyio.to_thread.run_sync(start_and_open)  # a new run: nobody else writes to it yet
    return await proceed(run, step, execute, hint=hint, end=True)


async def resume_one_call(
    recorder: RunRecorder,
    run_id: str,
    execute: Execute,
    *,
    hint: Hint,
    call_id: str | None = None,
    approval_id: str | None = None,
) -> Any:
    """Resume the held call of a run of its own (named by its call id or its approval id) and end the run
    with it. A run that already ended answers from what it recorded: the result, or why it did not run."""

    def resume() -> tuple[RecordedRun | None, Step]:
        state = recorder.repository.load(run_stream(run_id))
        if state.version == 0:
            raise RecorderError(f"there is no run {run_id} in {recorder.journal.url}")
        chosen = call_id
        if chosen is None:
            approval = state.approvals.get(approval_id or "")
            if approval is None:
                raise RecorderError(f"run {run_id} has no approval {approval_id!r}")
            chosen = approval.call_id
        call = state.calls.get(chosen)
        if call is None:
            raise RecorderError(f"run {run_id} has no tool call {chosen!r}")
        if state.finished:
            if call.status in ("executed", "failed"):
                return None, Step(chosen, call.tool, call.arguments, answer=recorded_result(state, chosen))
            reason = call.error if call.status == "refused" and call.error else f"the run has already {state.status}"
            refused = Withheld("deny", reason, run_id, chosen, call.tool, call.rule)
            return None, Step(chosen, call.tool, call.arguments, withheld=refused)
        run = recorder.resume(run_id)
        return run, resume_step(run, chosen, end=True)

    run, step = await anyio.to_thread.run_sync(resume)
    if run is None:
        return withheld_result(step.withheld, hint) if step.withheld is not None else step.answer
    return await proceed(run, step, execute, hint=hint, end=True)


def end_with(run: RecordedRun, result: Any) -> None:
    """End a run of its own with what its call gave (unless it ended already, or its call waits for a human)."""
    if run.state.finished or any(call.status == "waiting_approval" for call in run.state.calls.values()):
        return
    output = wire(result)
    failed = output.get("isError") is True
    run.complete(text_of(output) or "(the tool returned no text)", outcome="fallback" if failed else "answered")


def end_after(run: RecordedRun, error: BaseException) -> None:
    if run.state.finished:
        return
    if isinstance(error, Exception):
        run.complete(f"the call failed: {type(error).__name__}: {error}", outcome="fallback")
    else:
        run.abort(f"the call was interrupted ({type(error).__name__})", error_type=type(error).__name__)


def _end_quietly(run: RecordedRun, error: Exception) -> None:
    """After a failure inside agentjournal: try to end the run; its own error is the one the caller sees."""
    try:
        end_after(run, error)
    except Exception as failed:
        logger.error("run %s: could not be ended after %r: %s", run.run_id, error, failed)
