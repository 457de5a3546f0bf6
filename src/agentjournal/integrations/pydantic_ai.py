"""pydantic-ai: every `agent.run` recorded as a run of the contract, its tool calls under policy, and replay.

`AgentJournal` is a pydantic-ai capability, the extension point pydantic-ai 2 offers for behaviour
that cuts across a run (hooks around the run, each model request and each tool execution). Give it
to an `Agent`, or to one `agent.run(capabilities=[...])`, and each run lands on `run-<id>`:

    recorder = RunRecorder(journal, policy=policy)
    agent = Agent(model, output_type=[str, DeferredToolRequests], capabilities=[AgentJournal(recorder)])
    result = await agent.run("Refund ORD-5521")

- RunStarted, before the first model request (the instructions and tools as first sent are pinned);
- ModelCalled per model request and reply, with usage, cost, latency and the request's fingerprint.
  The fingerprint covers the conversation, the instructions and the tools as pydantic-ai holds them,
  before a provider translates them, so a replay on another model object computes the same one;
- per function tool call, before it runs: ToolProposed and the policy's decision. A denied call never
  runs; the model is told with `ToolFailed` (which costs no retry). A call the policy sends to a human
  becomes a durable approval and pydantic-ai's deferred call (`ApprovalRequired`): the run ends with
  `DeferredToolRequests` and waits; `approval_results(journal, messages)` turns the humans' decisions
  into the `DeferredToolResults` that continue it, in any process;
- the tool's result or failure: ToolExecuted or ToolFailed, then ObservationCaptured;
- the output: ResponseDrafted, ResponseFinalized, RunCompleted; an exception: RunAborted; a
  cancellation: RunCancelled.

Every reply the capability records carries `metadata["agentjournal"] = {"run_id", "version"}`, which
pydantic-ai keeps in the message history and never sends to the model: a later `agent.run` on that
history continues the same run while it is open, and starts a new one once it has finished.

`replay(agent, journal, run_id)` runs the agent's code again, answered by the recorded replies
(`ReplayModel`) and the recorded tool results, checks every request's fingerprint against the
recording, and raises `DivergenceError`, saying what changed, at the first request that differs. It
writes nothing.

A failure inside agentjournal (the database unreachable, a policy that cannot be evaluated) fails the
pydantic-ai run with that error. The recorder writes a step in one transaction: each reply before
pydantic-ai gets it (with the previous step's read-only calls), a claim before its tool runs, so a
side-effecting tool whose claim could not be recorded does not run; a read-only tool's record fails at
the next reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import dataclasses
import hashlib
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

try:
    from pydantic_ai.agent.abstract import AbstractAgent
    from pydantic_ai.capabilities import AbstractCapability, CapabilityOrdering
    from pydantic_ai.exceptions import (
        ApprovalRequired,
        CallDeferred,
        ModelRetry,
        ToolFailed,
        ToolFailedError,
        ToolRetryError,
        UserError,
    )
    from pydantic_ai.exceptions import RunCancelled as PydanticRunCancelled
    from pydantic_ai.messages import (
        ModelMessage,
        ModelMessagesTypeAdapter,
        ModelRequest,
        ModelResponse,
        ModelResponsePart,
        SystemPromptPart,
        TextPart,
        ToolCallPart,
        ToolReturn,
        ToolReturnPart,
        UserPromptPart,
    )
    from pydantic_ai.models import Model, ModelRequestContext, ModelRequestParameters
    from pydantic_ai.models.function import FunctionModel
    from pydantic_ai.models.test import TestModel
    from pydantic_ai.models.wrapper import WrapperModel
    from pydantic_ai.run import AgentRunResult
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.tools import (
        DeferredToolRequests,
        DeferredToolResults,
        RunContext,
        ToolApproved,
        ToolDefinition,
        ToolDenied,
    )
    from pydantic_ai.usage import RequestUsage
    from pydantic_core import to_jsonable_python
except ImportError as exc:  # pragma: no cover - the extra is installed in the test environment
    raise ImportError(
        f"the pydantic-ai integration needs the `pydantic-ai` extra: pip install 'agentjournal[pydantic-ai]' ({exc})"
    ) from exc

from agentjournal.agents.decider import arguments_hash
from agentjournal.agents.models.base import check_real_request
from agentjournal.agents.replay import DivergenceError
from agentjournal.integrations.recorder import RecordedRun, RecorderError, RunRecorder, ToolDecision
from agentjournal.journal import Journal, RecordedEvent, StreamNotFoundError
from agentjournal.journal.envelope import canonical_json
from agentjournal.journal.errors import AgentJournalError
from agentjournal.model import Repository
from agentjournal.runs import RunState, ToolCall, run_stream, upcast
from agentjournal.runs import events as ev

__all__ = [
    "AgentJournal",
    "ReplayModel",
    "ReplayResult",
    "ReplayedToolError",
    "approval_results",
    "idempotency_key",
    "replay",
]

KEY = "agentjournal"
"""The key of the stamp on a recorded reply's `metadata` (and of the capability's id)."""

Who = str | Callable[[RunContext[Any]], str | None] | None
"""A user or tenant id: fixed, or read from the run's context (its deps, its metadata)."""

T = TypeVar("T")

_claimed: ContextVar[str | None] = ContextVar("agentjournal_pydantic_ai_claim", default=None)


def idempotency_key() -> str | None:
    """Inside a tool the policy let run with a claim (a side effect, or a call a human approved): the call's
    idempotency key, the same for every attempt, to hand to the system the tool changes. Else None."""
    return _claimed.get()


class ReplayedToolError(AgentJournalError):
    """A replayed tool call that failed in the recording with an exception: raised again, with its message."""


# ----- the request, as the fingerprint sees it ---------------------------------------------------

_MESSAGE_NOISE = frozenset(
    {
        "timestamp",
        "run_id",
        "conversation_id",
        "metadata",
        "usage",
        "model_name",
        "model_id",
        "provider_name",
        "provider_url",
        "provider_details",
        "provider_response_id",
        "finish_reason",
        "history_digest",
        "workspace_ref",
        "failed_attempts",
        "canonical_system",
        "state",
    }
)
"""Fields of a message the model is not sent (or that change from one run to the next)."""
_PART_NOISE = frozenset({"timestamp", "id", "provider_name", "provider_details", "metadata", "content_file_digests"})


def _sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _jsonable(value: Any) -> Any:
    return to_jsonable_python(value, fallback=repr)


def _message_form(message: ModelMessage) -> dict[str, Any]:
    """A message as the model is sent it: ids, times and provider bookkeeping left out; tool arguments parsed."""
    dumped: dict[str, Any] = ModelMessagesTypeAdapter.dump_python([message], mode="json")[0]
    form = {key: value for key, value in dumped.items() if key not in _MESSAGE_NOISE and key != "parts"}
    parts = []
    for dumped_part in dumped.get("parts") or []:
        part = {key: value for key, value in dumped_part.items() if key not in _PART_NOISE}
        if part.get("part_kind") == "tool-call" and isinstance(part.get("args"), str):
            # a streamed call carries its arguments as text, a non-streamed one as an object
            with contextlib.suppress(orjson.JSONDecodeError):
                part["args"] = orjson.loads(part["args"] or "{}")
        parts.append(part)
    form["parts"] = parts
    return form


def _tool_spec(tool: ToolDefinition) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description or "", "parameters": tool.parameters_json_schema}


def _prompt_text(messages: Sequence[ModelMessage], params: ModelRequestParameters) -> str:
    """The system prompt as sent: the first request's system parts, then the instructions."""
    texts: list[str] = []
    if messages and isinstance(messages[0], ModelRequest):
        texts += [part.content for part in messages[0].parts if isinstance(part, SystemPromptPart)]
    texts += [part.content for part in params.instruction_parts or ()]
    return "\n\n".join(texts)


@dataclass
class _Request:
    """One model request as recorded: its fingerprint, what it adds to the conversation, and when it left."""

    fingerprint: str
    prompt_text: str
    prompt_hash: str
    tool_specs: list[dict[str, Any]]
    tools_hash: str
    new: list[ModelMessage]
    started: float = field(default_factory=time.perf_counter)


class _Forms:
    """Per-message hashes, kept per message object: pydantic-ai's history is append-only, so a step hashes
    only the messages it added and a long run costs the same per step as a short one."""

    def __init__(self) -> None:
        self._hashes: dict[int, tuple[ModelMessage, str]] = {}
        self._tools: dict[tuple[str, str | None, int], tuple[Any, str]] = {}

    def tool_hashes(self, tools: Sequence[ToolDefinition]) -> dict[str, str]:
        """Each tool's schema hash; a tool's definition is rebuilt every step, its schema object is not."""
        hashes = {}
        for tool in tools:
            key = (tool.name, tool.description, id(tool.parameters_json_schema))
            known = self._tools.get(key)
            if known is None or known[0] is not tool.parameters_json_schema:
                known = self._tools[key] = (tool.parameters_json_schema, _sha256(_tool_spec(tool)))
            hashes[tool.name] = known[1]
        return hashes

    def hash_of(self, message: ModelMessage) -> str:
        known = self._hashes.get(id(message))
        if known is not None and known[0] is message:
            return known[1]
        digest = _sha256(_message_form(message))
        self._hashes[id(message)] = (message, digest)
        return digest

    def request(self, request_context: ModelRequestContext, new: list[ModelMessage]) -> _Request:
        messages = request_context.messages
        params = request_context.model_request_parameters
        prompt = _prompt_text(messages, params)
        tools = self.tool_hashes(params.function_tools)
        whole = {
            "instructions": [part.content for part in params.instruction_parts or ()],
            "tools": tools,
            "output_tools": self.tool_hashes(params.output_tools),
            "allow_text_output": params.allow_text_output,
            "messages": [self.hash_of(message) for message in messages],
        }
        return _Request(
            fingerprint=_sha256(whole),
            prompt_text=prompt,
            prompt_hash=hashlib.sha256(prompt.encode()).hexdigest(),
            tool_specs=[_tool_spec(tool) for tool in params.function_tools],
            tools_hash=_sha256(tools),
            new=new,
        )


def _stamp(message: ModelMessage) -> dict[str, Any] | None:
    if isinstance(message, ModelResponse) and isinstance(message.metadata, dict):
        stamp = message.metadata.get(KEY)
        if isinstance(stamp, dict) and isinstance(stamp.get("run_id"), str):
            return stamp
    return None


def _stamped_run(messages: Sequence[ModelMessage]) -> str | None:
    """The run that recorded the newest reply in this history, if any did."""
    for message in reversed(messages):
        stamp = _stamp(message)
        if stamp is not None:
            return str(stamp["run_id"])
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "\n".join(item if isinstance(item, str) else f"[{type(item).__name__}]" for item in content)
    return canonical_json(_jsonable(content)).decode()


def _answer_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    return canonical_json(_jsonable(output)).decode()


def _denied_message(decision: ToolDecision) -> str:
    rule = f" (rule {decision.rule})" if decision.rule else ""
    return f"The call was denied by policy{rule}: {decision.reason}"


def _rejected_message(by: str | None, reason: str | None) -> str:
    return f"The call was rejected by {by or 'a reviewer'}: {reason or 'no reason given'}"


def _is_test_double(model: Model) -> bool:
    while isinstance(model, WrapperModel):
        model = model.wrapped
    return isinstance(model, FunctionModel | TestModel | ReplayModel)


# ----- the contract, from pydantic-ai's messages --------------------------------------------------


def _contract_response(response: ModelResponse, function_tools: Collection[str]) -> dict[str, Any]:
    calls = [
        {"id": part.tool_call_id, "name": part.tool_name, "arguments": _jsonable(part.args_as_dict())}
        for part in response.parts
        if isinstance(part, ToolCallPart) and part.tool_name in function_tools
    ]
    contract: dict[str, Any] = {"text": response.text}
    if calls:
        contract["tool_calls"] = calls
    return contract


def _rebuilt_parts(contract: dict[str, Any]) -> list[ModelResponsePart]:
    parts: list[ModelResponsePart] = [TextPart(contract["text"])] if contract.get("text") else []
    parts += [ToolCallPart(c["name"], c["arguments"], tool_call_id=c["id"]) for c in contract.get("tool_calls") or ()]
    return parts


def _said_by_the_contract(parts: Sequence[ModelResponsePart], function_tools: Collection[str]) -> bool:
    """Whether the contract's `{text, tool_calls}` rebuilds these parts: at most one text, first, then calls
    of function tools, none with a provider's id or details (which a replay could not give back)."""
    for index, part in enumerate(parts):
        if isinstance(part, TextPart):
            if index != 0 or not part.content:
                return False
        elif type(part) is not ToolCallPart or part.tool_name not in function_tools or part.tool_kind is not None:
            return False
        if part.id is not None or part.provider_name is not None or part.provider_details:
            return False
    return True


def _parts_form(parts: Sequence[ModelResponsePart]) -> list[dict[str, Any]]:
    form: list[dict[str, Any]] = _message_form(ModelResponse(parts=list(parts)))["parts"]
    return form


# ----- one run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Go:
    """What a tool call comes to before it runs: the decision, the claim's idempotency key, or the output of
    an earlier execution (a history pydantic-ai was given without the call's result: it does not run twice)."""

    decision: ToolDecision
    key: str | None = None
    ran: bool = False
    output: Any = None


class _Session:
    """What one pydantic-ai run records: its contract run, the request in flight, the message boundary."""

    def __init__(self, owner: AgentJournal) -> None:
        self.owner = owner
        self.recorder = owner.recorder
        self.run: RecordedRun | None = None
        self.forms = _Forms()
        self.asked: _Request | None = None
        self.run_id: str | None = None
        """The run whose replies end the part of the history already recorded (the replayed one in a replay)."""
        self._writer = owner.writer
        self._lock = threading.Lock()  # never two writes at once, also when a task is cancelled mid-write

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one recording step: on SQLite (and in memory) at once, on a database server on the journal's
        writer thread, so the event loop never waits on the network. Steps run in the order asked."""
        if self._writer is None:
            return self.locked(fn, *args)
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._writer, context.run, self.locked, fn, *args)

    def locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return fn(*args)

    # ----- the run ------------------------------------------------------------------------------

    def open(self, messages: Sequence[ModelMessage]) -> None:
        """Continue the run that recorded this history while it is open; otherwise a new run starts later."""
        run_id = _stamped_run(messages)
        if run_id is None:
            return
        try:
            self.run = self.recorder.resume(run_id)
        except StreamNotFoundError:
            return  # recorded into another journal
        except RecorderError:
            return  # it has finished: this is a later turn of the conversation, a run of its own

    def ensure_started(self, ctx: RunContext[Any], request: _Request | None) -> RecordedRun:
        if self.run is not None:
            return self.run
        owner = self.owner
        self.run = self.recorder.start(
            agent=owner.agent or (ctx.agent.name if ctx.agent is not None else None) or "pydantic-ai",
            input=self._input(ctx),
            model=ctx.model.model_name,
            instructions=request.prompt_text if request else "",
            tools=request.tool_specs if request else (),
            run_id=ctx.run_id,
            user_id=owner.who(owner.user_id, ctx),
            tenant_id=owner.who(owner.tenant_id, ctx),
            route=owner.route,
        )
        return self.run

    @staticmethod
    def _input(ctx: RunContext[Any]) -> str:
        if ctx.prompt is not None:
            text = _text_of(ctx.prompt)
            if text.strip():
                return text
        for message in reversed(ctx.messages):
            if isinstance(message, ModelRequest):
                for part in reversed(message.parts):
                    if isinstance(part, UserPromptPart) and _text_of(part.content).strip():
                        return _text_of(part.content)
        return "(the run continued a message history with no user prompt)"

    def end(self, output: Any) -> None:
        run = self.run
        if run is None or run.state.finished:
            return
        if isinstance(output, DeferredToolRequests):
            run.flush()  # the run waits for its approvals (or the application's results): all of it is written
            return
        run.complete(_answer_text(output))

    def fail(self, ctx: RunContext[Any], error: BaseException) -> None:
        """End the run with what went wrong; a failure to record that is added to the original error."""
        try:
            run = self.ensure_started(ctx, None)
            if run.state.finished:
                return
            if isinstance(error, PydanticRunCancelled | asyncio.CancelledError):
                reason = str(error) or "the task running the agent was cancelled"
                run.record(ev.RunCancelled(reason=reason, by="pydantic-ai"), "orchestrator", run.state.last_event_id)
            else:
                run.abort(f"the agent failed: {type(error).__name__}: {error}", error_type=type(error).__name__)
        except Exception as failure:
            error.add_note(f"agentjournal could not record the end of the run: {type(failure).__name__}: {failure}")

    # ----- model requests -------------------------------------------------------------------------

    def boundary(self, messages: Sequence[ModelMessage]) -> list[ModelMessage]:
        """The messages this run has not recorded yet: those after its newest recorded reply."""
        run_id = self.run.run_id if self.run is not None else self.run_id
        for index in range(len(messages) - 1, -1, -1):
            stamp = _stamp(messages[index])
            if stamp is not None and stamp["run_id"] == run_id:
                return list(messages[index + 1 :])
        return list(messages)

    def sweep(self, run: RecordedRun, new: Sequence[ModelMessage]) -> None:
        """Results of this run's calls that reached the conversation without passing its tool hook: a call a
        human rejected (`ToolDenied` from `approval_results`), or one the application answered itself."""
        for message in new:
            if not isinstance(message, ModelRequest):
                continue
            for part in message.parts:
                if not isinstance(part, ToolReturnPart):
                    continue
                call = run.state.calls.get(part.tool_call_id)
                if call is None or call.observed:
                    continue
                text = _text_of(part.content)
                if part.outcome == "denied":
                    approval = run.state.approvals.get(call.approval_id or "")
                    if approval is not None and approval.status == "pending" and approval.expired():
                        expired = ev.ToolRejected(
                            approval_id=approval.approval_id,
                            by="system",
                            reason=f"the approval expired at {approval.expires_at}",
                            tool=approval.tool,
                        )
                        run.record(expired, "system", approval.requested_id)
                    run.observe_refusal(call.call_id, error_type="rejected_by_human", error=text)
                elif part.outcome == "success":
                    run.tool_result(call.call_id, _jsonable(part.content))
                else:
                    run.tool_result(call.call_id, error=text, error_type=part.outcome)

    def record_reply(
        self, ctx: RunContext[Any], request: _Request, response: ModelResponse, params: ModelRequestParameters
    ) -> int:
        run = self.ensure_started(ctx, request)
        self.sweep(run, request.new)
        function_tools = {tool.name for tool in params.function_tools}
        contract = _contract_response(response, function_tools)
        model = response.model_name or ctx.model.model_name
        usage = response.usage
        reported = usage.cost if isinstance(usage.cost, int | float) else None
        extra: dict[str, Any] = {"prompt_hash": request.prompt_hash, "tools_hash": request.tools_hash}
        if not _said_by_the_contract(response.parts, function_tools):
            # the contract's {text, tool_calls} does not say it all (thinking, an output tool, the parts' order):
            # keep pydantic-ai's parts too, so a replay answers what the model answered
            extra["pydantic_ai_parts"] = _parts_form(response.parts)
        run.model_call(
            model=model,
            text=contract["text"],
            tool_calls=contract.get("tool_calls", ()),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost=reported,
            latency_ms=(time.perf_counter() - request.started) * 1000.0,
            stage="act" if contract.get("tool_calls") else "respond",
            new_messages=_contract_messages(
                request.new, calls=run.state.calls, input_text=run.state.input, first=run.state.step == 0
            ),
            fingerprint=request.fingerprint,
            **extra,
        )
        return run.state.version

    # ----- tool calls ---------------------------------------------------------------------------------

    def decide(self, ctx: RunContext[Any], call: ToolCallPart, arguments: dict[str, Any], side_effect: bool) -> _Go:
        """The policy's decision on a call (or the human's, when it was held), with a claim when it needs one."""
        run = self.ensure_started(ctx, None)
        known = run.state.calls.get(call.tool_call_id)
        if known is None:
            decision = run.tool_call(call.tool_name, arguments, call_id=call.tool_call_id)
        else:
            if known.status == "executed":
                return _Go(run.decision(known.call_id), ran=True, output=known.output)
            if known.status == "claimed":
                worker = known.claim.worker if known.claim else "a worker"
                raise RecorderError(
                    f"run {run.run_id}: tool call {known.call_id} ({known.tool}) was claimed by {worker} and has "
                    "no result: it may have run. Record its outcome (tool_result) before running the agent again"
                )
            decision = run.decision(known.call_id)
            decision = self._decided(run, known.call_id, decision, arguments)
        key = None
        if decision.allowed and (side_effect or decision.approval_id is not None):
            key = run.claim(call.tool_call_id, worker=f"{socket.gethostname()}/{os.getpid()}/pydantic-ai")
        return _Go(decision, key)

    def _decided(
        self, run: RecordedRun, call_id: str, decision: ToolDecision, arguments: dict[str, Any]
    ) -> ToolDecision:
        """A held call pydantic-ai runs again: the journal's decision stands, whatever the application passed."""
        call = run.state.calls[call_id]
        approval = run.state.approvals.get(call.approval_id or "")
        refusal: tuple[str, str] | None = None
        if decision.action == "require_human_approval" and approval is not None and approval.expired():
            rejected = ev.ToolRejected(
                approval_id=approval.approval_id,
                by="system",
                reason=f"the approval expired at {approval.expires_at}",
                tool=approval.tool,
            )
            run.record(rejected, "system", approval.requested_id)
            refusal = ("rejected_by_human", f"The approval expired at {approval.expires_at}")
        elif decision.action == "deny" and approval is not None:
            refusal = ("rejected_by_human", _rejected_message(approval.by, approval.reason))
        elif decision.action == "allow" and approval and approval.approved_hash != arguments_hash(arguments):
            refusal = ("invalid_arguments", "The arguments differ from the ones a human approved")
        if refusal is None:
            return decision
        if not run.state.calls[call_id].observed:
            run.observe_refusal(call_id, error_type=refusal[0], error=refusal[1])
        return ToolDecision(call_id, "deny", refusal[1], call.rule, call.approval_id)

    def invalid(self, ctx: RunContext[Any], call: ToolCallPart, error: BaseException) -> None:
        run = self.ensure_started(ctx, None)
        if call.tool_call_id not in run.state.calls:
            arguments = _jsonable(call.args_as_dict())
            run.refuse_call(
                call.tool_name, arguments, error_type="invalid_arguments", error=str(error), call_id=call.tool_call_id
            )


def _contract_messages(
    new: Sequence[ModelMessage], *, calls: Mapping[str, ToolCall], input_text: str, first: bool
) -> list[dict[str, Any]]:
    """A request's new messages in the contract's form: a reference to the event that holds each one when
    the run holds it (the user's input in RunStarted, a tool's output in ToolExecuted), the message itself
    otherwise (the conversation a run continued, a retry prompt, a result the application supplied)."""
    out: list[dict[str, Any]] = []
    for position, message in enumerate(new):
        if isinstance(message, ModelResponse):
            out.append({"role": "assistant", "content": message.text, "tool_calls": _tool_calls_of(message)})
            continue
        prompts = [index for index, part in enumerate(message.parts) if isinstance(part, UserPromptPart)]
        for index, part in enumerate(message.parts):
            if isinstance(part, UserPromptPart):
                text = _text_of(part.content)
                is_input = first and position == len(new) - 1 and index == prompts[-1] and text == input_text
                out.append({"role": "user", "ref": 1} if is_input else {"role": "user", "content": text})
            elif isinstance(part, SystemPromptPart):
                out.append({"role": "system", "content": part.content})
            elif isinstance(part, ToolReturnPart):
                call = calls.get(part.tool_call_id)
                told: dict[str, Any] = {"role": "tool", "tool_call_id": part.tool_call_id, "name": part.tool_name}
                if call is not None and call.executed_version is not None and part.outcome == "success":
                    told["ref"] = call.executed_version
                else:
                    told["content"] = _text_of(part.content)
                    if part.outcome != "success":
                        told["outcome"] = part.outcome
                out.append(told)
            else:
                item: dict[str, Any] = {"role": "user", "kind": part.part_kind}
                content = getattr(part, "content", None)
                if content is not None:
                    item["content"] = _text_of(content)
                tool_call_id = getattr(part, "tool_call_id", None)
                if tool_call_id:
                    item["tool_call_id"] = tool_call_id
                out.append(item)
    return out


_FAILURES: dict[type[BaseException], str] = {ToolRetryError: "ModelRetry", ToolFailedError: "ToolFailed"}
"""pydantic-ai's wrappers around a tool's ModelRetry / ToolFailed, named as the tool raised them."""


def _tool_calls_of(response: ModelResponse) -> list[dict[str, Any]]:
    return [
        {"id": part.tool_call_id, "name": part.tool_name, "arguments": _jsonable(part.args_as_dict())}
        for part in response.parts
        if isinstance(part, ToolCallPart)
    ]


# ----- the capability -------------------------------------------------------------------------------


class AgentJournal(AbstractCapability[Any]):
    """Records every run of the agent it is given to as a run of the contract, under the recorder's policy.

    `user_id` / `tenant_id`: fixed, or a function of the run's `RunContext` (e.g. `lambda ctx: ctx.deps.user`).
    `side_effects`: tools claimed in the journal before they run (also a tool whose `metadata` says
    `{"side_effect": True}`, and every call a human approved), so a second process can never run one twice.
    """

    def __init__(
        self,
        recorder: RunRecorder,
        *,
        agent: str | None = None,
        user_id: Who = None,
        tenant_id: Who = None,
        route: str | None = None,
        side_effects: Collection[str] = (),
    ) -> None:
        if not isinstance(recorder, RunRecorder):
            raise TypeError(f"AgentJournal needs a RunRecorder (RunRecorder(journal, policy=...)), got {recorder!r}")
        self.id = KEY  # one per agent: a run-level AgentJournal replaces the agent's (replay() relies on it)
        self.description = None
        self.defer_loading = False
        self.recorder = recorder
        self.agent = agent
        self.user_id = user_id
        self.tenant_id = tenant_id
        self.route = route
        self.side_effects = frozenset(side_effects)
        self.writer: ThreadPoolExecutor | None = None
        """Where the records are written from: None on SQLite and in memory (a local append takes about 0.1 ms,
        less than a hop to a thread costs), one thread on a database server (a round trip the loop does not
        wait for); every run of this capability writes through it, in order."""
        if not recorder.journal.url.startswith(("sqlite:", "memory:")):
            self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentjournal-pydantic-ai")
            weakref.finalize(self, self.writer.shutdown, wait=False)
        self._session: _Session | None = None
        self._replay: ReplayModel | None = None

    def __repr__(self) -> str:
        mode = f"replaying {self._replay.run_id}" if self._replay else f"recording into {self.recorder.journal.url}"
        return f"AgentJournal({mode})"

    @classmethod
    def replaying(cls, model: ReplayModel) -> AgentJournal:
        """The capability in replay mode: it records nothing, checks each request against the recording and
        answers each tool call with the recorded outcome. `replay()` uses it."""
        journaled = cls(RunRecorder(model.journal))
        journaled._replay = model
        return journaled

    @staticmethod
    def who(value: Who, ctx: RunContext[Any]) -> str | None:
        return value(ctx) if callable(value) else value

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # it holds a journal: not something an agent spec file can say

    def get_ordering(self) -> CapabilityOrdering | None:
        # innermost: it sees the request other capabilities have shaped, and nothing runs between the
        # policy's decision and the tool
        return CapabilityOrdering(position="innermost")

    async def for_run(self, ctx: RunContext[Any]) -> AbstractCapability[Any]:
        bound = copy.copy(self)
        bound._session = _Session(bound)
        if self._replay is not None:
            bound._session.run_id = self._replay.run_id
        return bound

    def _require_session(self) -> _Session:
        if self._session is None:
            raise RecorderError("AgentJournal was used outside a pydantic-ai run")
        return self._session

    # ----- the run ------------------------------------------------------------------------------------

    async def wrap_run(self, ctx: RunContext[Any], *, handler: Callable[[], Any]) -> AgentRunResult[Any]:
        session = self._require_session()
        if self._replay is not None:
            result: AgentRunResult[Any] = await handler()
            return result
        await session.write(session.open, list(ctx.messages))
        try:
            result = await handler()
        except asyncio.CancelledError as error:
            session.locked(session.fail, ctx, error)  # not on a worker thread: this task is being cancelled
            raise
        except Exception as error:
            await session.write(session.fail, ctx, error)
            raise
        await session.write(session.end, result.output)
        return result

    # ----- model requests -------------------------------------------------------------------------------

    async def before_model_request(
        self, ctx: RunContext[Any], request_context: ModelRequestContext
    ) -> ModelRequestContext:
        session = self._require_session()
        new = session.boundary(request_context.messages)
        request = session.forms.request(request_context, new)
        if self._replay is not None:
            self._replay.check(request)
            return request_context
        if not _is_test_double(request_context.model):
            check_real_request(f"pydantic-ai {request_context.model.system}")
        if session.run is None:
            await session.write(session.ensure_started, ctx, request)
        session.asked = request
        request.started = time.perf_counter()
        return request_context

    async def after_model_request(
        self, ctx: RunContext[Any], *, request_context: ModelRequestContext, response: ModelResponse
    ) -> ModelResponse:
        session = self._require_session()
        request = session.asked
        if self._replay is not None or request is None:
            return response
        params = request_context.model_request_parameters
        version = await session.write(session.record_reply, ctx, request, response, params)
        run = session.run
        assert run is not None
        metadata = {**(response.metadata or {}), KEY: {"run_id": run.run_id, "version": version}}
        return dataclasses.replace(response, metadata=metadata)

    # ----- tool calls -------------------------------------------------------------------------------------

    async def wrap_tool_execute(
        self,
        ctx: RunContext[Any],
        *,
        call: ToolCallPart,
        tool_def: ToolDefinition,
        args: dict[str, Any],
        handler: Callable[[dict[str, Any]], Any],
    ) -> Any:
        session = self._require_session()
        if self._replay is not None:
            return self._replay.outcome(call, approved=ctx.tool_call_approved)
        arguments = _jsonable(args)
        side_effect = tool_def.name in self.side_effects or bool((tool_def.metadata or {}).get("side_effect"))
        go = await session.write(session.decide, ctx, call, arguments, side_effect)
        run = session.run
        assert run is not None
        decision = go.decision
        if go.ran:
            return go.output
        if decision.action == "deny":
            raise ToolFailed(decision.reason if decision.approval_id else _denied_message(decision))
        if decision.action == "require_human_approval":
            raise ApprovalRequired(metadata={KEY: {"run_id": run.run_id, "approval_id": decision.approval_id}})
        token = _claimed.set(go.key)
        started = time.perf_counter()
        try:
            result = await handler(args)
        except (ApprovalRequired, CallDeferred):
            raise  # the tool deferred itself: its result arrives with the run that continues it
        except Exception as error:
            kind = _FAILURES.get(type(error), type(error).__name__)
            await session.write(self._failed, run, call, kind, str(error), started)
            raise
        finally:
            _claimed.reset(token)
        output = result.return_value if isinstance(result, ToolReturn) else result
        latency = (time.perf_counter() - started) * 1000.0
        await session.write(self._executed, run, call, _jsonable(output), latency)
        return result

    @staticmethod
    def _executed(run: RecordedRun, call: ToolCallPart, output: Any, latency_ms: float) -> None:
        run.tool_result(call.tool_call_id, output, latency_ms=latency_ms)

    @staticmethod
    def _failed(run: RecordedRun, call: ToolCallPart, kind: str, error: str, started: float) -> None:
        latency = (time.perf_counter() - started) * 1000.0
        run.tool_result(call.tool_call_id, error=error, error_type=kind, latency_ms=latency)

    async def on_tool_validate_error(
        self,
        ctx: RunContext[Any],
        *,
        call: ToolCallPart,
        tool_def: ToolDefinition,
        args: str | dict[str, Any],
        error: Exception,
    ) -> dict[str, Any]:
        session = self._require_session()
        if self._replay is None:
            await session.write(session.invalid, ctx, call, error)
        raise error


# ----- human decisions, for the run that continues ------------------------------------------------------


def approval_results(journal: Journal, messages: Sequence[ModelMessage]) -> DeferredToolResults:
    """The humans' decisions on the calls a run waits for, as the `DeferredToolResults` that continue it:

        results = approval_results(journal, history)
        result = await agent.run(message_history=history, deferred_tool_results=results)

    `messages` is the run's message history (`result.all_messages()`, saved however the application
    saves it). A rejection (or an expired approval) becomes `ToolDenied` with the reviewer's reason.
    Raises RecorderError while any of the calls still waits for a human, naming the approvals."""
    run_id = _stamped_run(messages)
    if run_id is None:
        raise RecorderError("this message history was not recorded by AgentJournal (no reply carries its stamp)")
    try:
        state = Repository(journal, RunState).load(run_stream(run_id))
    except StreamNotFoundError:
        raise RecorderError(f"this message history was recorded as run {run_id}, which {journal.url} has not") from None
    if state.finished:
        raise RecorderError(f"run {run_id} has already {state.status}: it waits for nobody")
    last = next((m for m in reversed(messages) if isinstance(m, ModelResponse)), None)
    asked = [part.tool_call_id for part in last.parts if isinstance(part, ToolCallPart)] if last else []
    results = DeferredToolResults()
    pending = []
    for call_id in asked:
        call = state.calls.get(call_id)
        if call is None or call.approval_id is None:
            continue  # not held for a human: pydantic-ai has its result, or runs it
        approval = state.approvals[call.approval_id]
        if approval.status == "approved":
            results.approvals[call_id] = ToolApproved()
        elif approval.status == "rejected":
            results.approvals[call_id] = ToolDenied(_rejected_message(approval.by, approval.reason))
        elif approval.expired():
            results.approvals[call_id] = ToolDenied(f"The approval expired at {approval.expires_at}")
        else:
            pending.append(f"{approval.approval_id} ({approval.tool})")
    if pending:
        raise RecorderError(
            f"run {run_id} still waits for a human on {', '.join(pending)}: "
            "decide with `agentjournal approvals approve|reject <id> --by NAME --reason TEXT`"
        )
    return results


# ----- replay ---------------------------------------------------------------------------------------------


class ReplayModel(Model):
    """A model that answers from a recorded run: request N gets recorded reply N, after `AgentJournal`
    (in replay mode, as `replay()` wires it) has checked that request's fingerprint against the recording."""

    def __init__(self, journal: Journal, run_id: str) -> None:
        super().__init__()
        self.journal = journal
        self.run_id = run_id.removeprefix("run-")
        events = [upcast(event) for event in journal.read_stream(run_stream(self.run_id))]
        if not events or events[0].type != "RunStarted":
            raise StreamNotFoundError(f"no recorded run {self.run_id!r} in {journal.url}")
        self.started: dict[str, Any] = events[0].data
        self.state = RunState(run_stream(self.run_id))
        for event in events:
            self.state.apply(event)
        self.calls: list[RecordedEvent] = [event for event in events if event.type == "ModelCalled"]
        self.told: dict[str, dict[str, Any]] = {
            event.data["call_id"]: event.data for event in events if event.type == "ObservationCaptured"
        }
        """What the model was told about each call (the text of a denial or a rejection is in it)."""
        self.answered = 0
        """How many requests have been answered so far."""
        self._checked = 0

    @property
    def model_name(self) -> str:
        return self.started.get("model") or "replay"

    @property
    def system(self) -> str:
        return "agentjournal-replay"

    def check(self, request: _Request) -> None:
        """Raise DivergenceError, saying what changed, unless `request` is the recorded one."""
        index = self._checked
        new = _contract_messages(request.new, calls=self.state.calls, input_text=self.state.input, first=index == 0)
        requested = {
            "fingerprint": request.fingerprint,
            "instructions (sha256)": request.prompt_hash,
            "tools (sha256)": request.tools_hash,
            "new messages": new,
        }
        if index >= len(self.calls):
            raise DivergenceError(
                self.run_id,
                f"model request {index + 1}",
                None,
                requested,
                [f"the recording has {len(self.calls)} model calls; the agent asks for one more"],
            )
        data = self.calls[index].data
        if data["request_fingerprint"] == request.fingerprint:
            self._checked += 1
            return
        recorded = {
            "fingerprint": data["request_fingerprint"],
            "instructions (sha256)": data.get("prompt_hash"),
            "tools (sha256)": data.get("tools_hash"),
            "new messages": data["new_messages"],
        }
        changes = self._why(data, request, new)
        raise DivergenceError(self.run_id, f"model request {index + 1}", recorded, requested, changes)

    def _why(self, data: dict[str, Any], request: _Request, new: list[dict[str, Any]]) -> list[str]:
        changes = []
        if data.get("prompt_hash") not in (None, request.prompt_hash):
            changes.append("the system prompt or the instructions changed")
        if data.get("tools_hash") not in (None, request.tools_hash):
            pinned: dict[str, str] = dict(self.started.get("tool_schemas") or {})
            current = {spec["name"]: _sha256(spec) for spec in request.tool_specs}
            if data["tools_hash"] == _sha256(pinned):
                changes += [f"tool {name} is new" for name in sorted(set(current) - set(pinned))]
                changes += [f"tool {name} was removed" for name in sorted(set(pinned) - set(current))]
                changes += [
                    f"tool {name} changed its description or schema"
                    for name in sorted(set(pinned) & set(current))
                    if pinned[name] != current[name]
                ]
            else:
                changes.append("the tools the agent is offered changed")
        recorded = data["new_messages"]
        for position, (old, now) in enumerate(zip(recorded, new, strict=False), start=1):
            if old != now:
                role = old.get("role")
                about = f", the result of {old['tool_call_id']}" if old.get("tool_call_id") else ""
                changes.append(f"new message {position} ({role}{about}) differs")
                break
        else:
            if len(recorded) != len(new):
                changes.append(f"the request adds {len(new)} messages; the recorded one added {len(recorded)}")
        return changes or ["the conversation before it differs (an earlier message, or the output schema)"]

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        index = self.answered
        if index >= self._checked:
            raise UserError("a ReplayModel answers only requests AgentJournal checked: run it with replay()")
        data = self.calls[index].data
        self.answered += 1
        stored = data.get("pydantic_ai_parts")
        if stored is not None:
            [reply] = ModelMessagesTypeAdapter.validate_python([{"kind": "response", "parts": stored}])
            assert isinstance(reply, ModelResponse)
            parts = list(reply.parts)
        else:
            parts = _rebuilt_parts(data["response"])
        return ModelResponse(
            parts=parts,
            usage=RequestUsage(input_tokens=data["input_tokens"], output_tokens=data["output_tokens"]),
            model_name=data["model"],
            metadata={KEY: {"run_id": self.run_id, "version": self.calls[index].version}},
        )

    def outcome(self, call: ToolCallPart, *, approved: bool) -> Any:
        """What the recorded run's tool call came to: its output, its failure raised again, or the same
        denial, rejection or hold for a human the model was told about."""
        recorded = self.state.calls.get(call.tool_call_id)
        if recorded is None:
            raise DivergenceError(
                self.run_id,
                f"tool call {call.tool_call_id}",
                None,
                {"tool": call.tool_name, "arguments": _jsonable(call.args_as_dict())},
                [f"the recording has no call {call.tool_call_id}"],
            )
        approval = self.state.approvals.get(recorded.approval_id or "")
        if recorded.status == "executed":
            if approval is not None and not approved:
                raise ApprovalRequired(metadata={KEY: {"run_id": self.run_id, "approval_id": approval.approval_id}})
            return recorded.output
        if recorded.status in ("failed", "retrying"):
            if recorded.error_type in ("ModelRetry", "ToolRetryError"):
                raise ModelRetry(recorded.error or "")
            if recorded.error_type in ("ToolFailed", "ToolFailedError"):
                raise ToolFailed(recorded.error or "")
            raise ReplayedToolError(f"{recorded.error_type}: {recorded.error}")
        if approval is not None:
            if approval.status == "pending" or not approved:
                raise ApprovalRequired(metadata={KEY: {"run_id": self.run_id, "approval_id": approval.approval_id}})
            return ToolDenied(self._told(recorded.call_id) or _rejected_message(approval.by, approval.reason))
        if recorded.status == "refused":
            told = self.told.get(recorded.call_id) or {}
            if told.get("error_type") == "policy_denied":
                decision = ToolDecision(recorded.call_id, "deny", told.get("error") or "", recorded.rule)
                raise ToolFailed(_denied_message(decision))
            raise ToolFailed(told.get("error") or "")
        raise DivergenceError(
            self.run_id,
            f"tool call {call.tool_call_id}",
            None,
            {"tool": call.tool_name, "status": recorded.status},
            [f"the recorded call never finished (it was {recorded.status})"],
        )

    def _told(self, call_id: str) -> str | None:
        told = self.told.get(call_id)
        return str(told["error"]) if told and told.get("error") else None

    def decisions(self, requests: DeferredToolRequests) -> DeferredToolResults | None:
        """The recorded humans' decisions on the calls `requests` holds, or None while the recording has none."""
        results = DeferredToolResults()
        for part in requests.approvals:
            recorded = self.state.calls.get(part.tool_call_id)
            approval = self.state.approvals.get(recorded.approval_id or "") if recorded else None
            if approval is None or approval.status == "pending":
                return None
            if approval.status == "approved":
                results.approvals[part.tool_call_id] = ToolApproved()
            else:
                told = self._told(part.tool_call_id)
                results.approvals[part.tool_call_id] = ToolDenied(
                    told or _rejected_message(approval.by, approval.reason)
                )
        return results


@dataclass(frozen=True)
class ReplayResult:
    """A replay: the recorded run, what the agent's code answered this time, and how many model calls it replayed."""

    original: RunState
    result: AgentRunResult[Any]
    model_calls: int
    resumed: int
    """How many times the replay continued after a recorded human decision, as the original run did."""

    @property
    def output(self) -> Any:
        return self.result.output

    @property
    def same_output(self) -> bool:
        if isinstance(self.output, DeferredToolRequests):
            return self.original.status == "waiting_approval"
        return self.original.final_response == _answer_text(self.output)


async def replay(
    agent: AbstractAgent[Any, Any],
    journal: Journal,
    run_id: str,
    *,
    deps: Any = None,
    message_history: Sequence[ModelMessage] | None = None,
) -> ReplayResult:
    """Run `agent` again on recorded run `run_id`'s input, answered by its recorded replies and tool results.

    Every model request must be the recorded one (its fingerprint); the first that is not raises
    DivergenceError with what changed. Where the original run waited for a human and continued, the
    replay continues with the recorded decision too. Nothing is written to any journal.
    `message_history`: the conversation the original run continued, if it continued one."""
    model = ReplayModel(journal, run_id)
    capability = AgentJournal.replaying(model)
    kwargs: dict[str, Any] = {"model": model, "capabilities": [capability], "deps": deps}
    result = await agent.run(model.state.input, message_history=message_history, **kwargs)
    resumed = 0
    while isinstance(result.output, DeferredToolRequests):
        decided = model.decisions(result.output)
        if decided is None:
            break
        resumed += 1
        result = await agent.run(message_history=result.all_messages(), deferred_tool_results=decided, **kwargs)
    return ReplayResult(original=model.state, result=result, model_calls=model.answered, resumed=resumed)
