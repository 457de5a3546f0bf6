"""The Claude Agent SDK: a session's model replies, its tool calls and its answer recorded as a run of the contract.

The SDK drives the `claude` CLI. `ClaudeAgentJournal.query` runs one turn through the SDK's own `query`
with PreToolUse / PostToolUse / PostToolUseFailure hooks added (the SDK's extension point for tool
calls), and reads the SDK's message stream for everything else:

    journaled = ClaudeAgentJournal(RunRecorder(journal, policy=policy), agent="refunds", user_id="u-7")
    async for message in journaled.query("I want a refund for ORD-5521", options=options):
        ...                                   # the SDK's messages, as `claude_agent_sdk.query` yields them
    # a call the policy held: the turn ended with ResultMessage(stop_reason="tool_deferred"), the run waits;
    # once a reviewer decided (`agentjournal approvals approve <id>`, any process):
    async for message in journaled.resume(run_id, options=options):
        ...

- RunStarted when the CLI's session starts (its model and the names of its tools); the run's id is the
  Claude session's id, so `resume(run_id)` finds the session;
- ModelCalled per model message (its text, its tool calls, the tokens the API reported);
- per tool call, in the PreToolUse hook, before the CLI runs it: ToolProposed and the policy's decision.
  Deny: the CLI is told `permissionDecision: "deny"` with the reason, so the model is; hold: a durable
  approval and `permissionDecision: "defer"`, which ends the turn with the call pending; `resume` runs
  the session again once a human decided, and the CLI asks the hook about the same call again;
- the tool's result (PostToolUse) or failure (PostToolUseFailure): ToolExecuted / ToolFailed and
  ObservationCaptured;
- the ResultMessage: ResponseDrafted, ResponseFinalized, RunCompleted; an error result or an exception:
  RunAborted. A held call leaves the run waiting.

The hooks fail closed (`on_failure="block"`): a decision that cannot be recorded blocks the tool, and the
turn then raises agentjournal's error. A read-only call's records are written with the next model
message; a claim, a hold and a side effect's result before the hook returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import socket
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

try:
    from claude_agent_sdk import (
        AssistantMessage,
        ClaudeAgentOptions,
        HookMatcher,
        ResultMessage,
        SystemMessage,
        TextBlock,
        ThinkingBlock,
        ToolUseBlock,
        UserMessage,
    )
    from claude_agent_sdk import query as sdk_query
    from claude_agent_sdk.types import HookContext, HookJSONOutput, PreToolUseHookSpecificOutput, StreamEvent
except ImportError as exc:  # pragma: no cover - the extra is installed in the test environment
    raise ImportError(
        "the Claude Agent SDK integration needs the `claude-agent-sdk` extra: "
        f"pip install 'agentjournal[claude-agent-sdk]' ({exc})"
    ) from exc

from pydantic_core import to_jsonable_python

from agentjournal.agents.decider import arguments_hash
from agentjournal.agents.models.base import check_real_request, real_requests_allowed
from agentjournal.integrations.recorder import RecordedRun, RecorderError, RunRecorder, ToolDecision
from agentjournal.journal.envelope import canonical_json
from agentjournal.journal.ids import uuid7
from agentjournal.runs import events as ev

__all__ = ["ClaudeAgentJournal"]

T = TypeVar("T")
Who = str | None
HOOK_TIMEOUT_S = 120.0
"""How long the CLI waits for one of these hooks (the SDK's default is 60 s)."""


def _jsonable(value: Any) -> Any:
    return to_jsonable_python(value, fallback=repr)


def policy_name(tool: str) -> str:
    """The name a tool is recorded and decided under: an MCP tool `mcp__<server>__<name>` is `<name>`, so
    a policy written for `issue_refund` decides the `issue_refund` of any server."""
    if tool.startswith("mcp__"):
        parts = tool.split("__", 2)
        if len(parts) == 3 and parts[2]:
            return parts[2]
    return tool


def _output(decision: Literal["deny", "defer"], reason: str) -> HookJSONOutput:
    specific: PreToolUseHookSpecificOutput = {
        "hookEventName": "PreToolUse",
        "permissionDecision": decision,
        "permissionDecisionReason": reason,
    }
    return {"hookSpecificOutput": specific}


def _check_offline(options: ClaudeAgentOptions) -> None:
    """Inside the test suite (`real_requests(False)`) the CLI may only talk to a server on this machine."""
    if real_requests_allowed():
        return
    base = options.env.get("ANTHROPIC_BASE_URL") or os.environ.get("ANTHROPIC_BASE_URL") or ""
    if urlsplit(base).hostname not in ("127.0.0.1", "localhost", "::1"):
        check_real_request(f"Claude Agent SDK (ANTHROPIC_BASE_URL={base or 'the Anthropic API'})")


def _stop(failure: BaseException, *, deny: bool) -> HookJSONOutput:
    """What a hook answers once recording failed: the session stops (and the call, before it runs, is denied)."""
    reason = f"agentjournal could not record the run ({type(failure).__name__}: {failure}); the session stops"
    stop: HookJSONOutput = {"continue_": False, "stopReason": reason}
    if deny:
        stop["hookSpecificOutput"] = _output("deny", reason)["hookSpecificOutput"]  # type: ignore[typeddict-item]
    return stop


@dataclass
class _Message:
    """One model message as it streams: its id and usage from the API's events, its blocks from the SDK."""

    message_id: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    blocks: list[Any] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)


class _Turn:
    """One turn of one session: the run it records into, the model messages in flight, what the hooks wait for."""

    def __init__(self, owner: ClaudeAgentJournal, run_id: str, prompt: str | None, run: RecordedRun | None) -> None:
        self.owner = owner
        self.run_id = run_id
        self.prompt = prompt
        self.run = run
        self.streaming: dict[str | None, _Message] = {}
        """The model message streaming now, per agent (None: the session's own; else the subagent's tool call)."""
        self.recorded: dict[str, asyncio.Event] = {}
        """Tool call id → set once the ModelCalled that asked for it is recorded."""
        self.told: list[str] = []
        """Calls whose outcome the model will see in its next request."""
        self.fingerprint = ""
        self.failure: BaseException | None = None
        self._lock = threading.Lock()

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        writer = self.owner.writer
        if writer is None:
            return self.locked(fn, *args)
        return await asyncio.get_running_loop().run_in_executor(writer, self.locked, fn, *args)

    def locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return fn(*args)

    def waiter(self, call_id: str) -> asyncio.Event:
        return self.recorded.setdefault(call_id, asyncio.Event())

    # ----- the run ------------------------------------------------------------------------------

    def start(self, init: dict[str, Any]) -> None:
        if self.run is not None:
            return
        owner = self.owner
        self.run = owner.recorder.start(
            agent=owner.agent,
            input=self.prompt or "(a Claude session)",
            model=str(init.get("model") or ""),
            tools=[{"name": name} for name in init.get("tools") or ()],
            run_id=self.run_id,
            user_id=owner.user_id,
            tenant_id=owner.tenant_id,
            route=owner.route,
        )

    def require_run(self) -> RecordedRun:
        if self.run is None:
            raise RecorderError(f"Claude session {self.run_id} has not started (no init message yet)")
        return self.run

    def record_model(self, message: _Message) -> list[str]:
        """ModelCalled for a finished model message; returns the ids of the tool calls it asked for."""
        run = self.require_run()
        text = "".join(block.text for block in message.blocks if isinstance(block, TextBlock)) or None
        uses = [block for block in message.blocks if isinstance(block, ToolUseBlock)]
        calls = [{"id": use.id, "name": policy_name(use.name), "arguments": _jsonable(use.input)} for use in uses]
        if run.state.step == 0 and not self.told and run.state.version == 1:
            new: list[dict[str, Any]] = [{"role": "user", "ref": 1}]
        else:
            new = []
            for call_id in self.told:
                call = run.state.calls.get(call_id)
                if call is None:
                    continue
                told: dict[str, Any] = {"role": "tool", "tool_call_id": call_id, "name": call.tool}
                if call.executed_version is not None:
                    told["ref"] = call.executed_version
                else:
                    told["content"] = call.error or "(not run)"
                new.append(told)
        self.told.clear()
        self.fingerprint = hashlib.sha256(canonical_json({"after": self.fingerprint, "new": new})).hexdigest()
        extra: dict[str, Any] = {}
        thinking = [block.thinking for block in message.blocks if isinstance(block, ThinkingBlock)]
        if thinking:
            extra["thinking"] = "\n\n".join(thinking)
        run.model_call(
            model=message.model,
            text=text,
            tool_calls=calls,
            input_tokens=message.input_tokens,
            output_tokens=message.output_tokens,
            latency_ms=(time.perf_counter() - message.started) * 1000.0,
            stage="act" if calls else "respond",
            new_messages=new,
            fingerprint=self.fingerprint,
            **extra,
        )
        return [use.id for use in uses]

    def end(self, result: ResultMessage) -> None:
        run = self.require_run()
        if run.state.finished:
            return
        denied = {str(d.get("tool_use_id")) for d in result.permission_denials or () if isinstance(d, dict)}
        for call in run.state.open_calls():
            if call.status == "waiting_approval":
                continue
            why = "permission_denied" if call.call_id in denied else "not_run"
            run.observe_refusal(call.call_id, error_type=why, error=f"the Claude CLI did not run it ({why})")
        if result.stop_reason == "tool_deferred" or result.deferred_tool_use is not None:
            run.flush()  # a held call: the run waits for its reviewer, `resume` continues it
            return
        if result.is_error:
            detail = "; ".join(result.errors or ()) or result.result or result.subtype
            run.abort(f"the Claude session ended with {result.subtype}: {detail}", error_type=result.subtype)
            return
        run.complete(result.result or "")

    def fail(self, error: BaseException) -> None:
        try:
            if self.run is None:
                self.start({})
            run = self.require_run()
            if not run.state.finished:
                run.abort(
                    f"the Claude session failed: {type(error).__name__}: {error}", error_type=type(error).__name__
                )
        except Exception as failure:
            error.add_note(f"agentjournal could not record the end of the run: {type(failure).__name__}: {failure}")

    # ----- tool calls -----------------------------------------------------------------------------

    def decide(self, tool: str, arguments: dict[str, Any], call_id: str) -> tuple[ToolDecision, str]:
        """The decision on a call the CLI is about to run, and the reason to give it."""
        run = self.require_run()
        name = policy_name(tool)
        known = run.state.calls.get(call_id)
        if known is None:
            decision = run.tool_call(name, arguments, call_id=call_id)
            reason = decision.reason
        else:
            if known.status == "executed":  # it ran before the session stopped: the CLI must not run it twice
                told = canonical_json(_jsonable(known.output)).decode()
                return ToolDecision(call_id, "deny", "already ran", known.rule), f"This call already ran: {told}"
            if known.status == "claimed":
                raise RecorderError(
                    f"run {run.run_id}: tool call {call_id} ({known.tool}) was claimed and has no result: it may have "
                    "run. Record its outcome (tool_result) before resuming the session"
                )
            decision, reason = self._decided(run, call_id, arguments)
        if decision.action == "deny":
            self.told.append(call_id)
            if known is None:
                rule = f" (rule {decision.rule})" if decision.rule else ""
                reason = f"The call was denied by policy{rule}: {decision.reason}"
        elif decision.allowed and (name in self.owner.side_effects or decision.approval_id is not None):
            run.claim(call_id, worker=f"{socket.gethostname()}/{os.getpid()}/claude-agent-sdk")
        return decision, reason

    def _decided(self, run: RecordedRun, call_id: str, arguments: dict[str, Any]) -> tuple[ToolDecision, str]:
        """A held call the CLI asks about again: the journal's decision, and what the model is told."""
        call = run.state.calls[call_id]
        decision = run.decision(call_id)
        approval = run.state.approvals.get(call.approval_id or "")
        if approval is None:
            return decision, decision.reason
        refusal: tuple[str, str] | None = None
        if decision.action == "require_human_approval" and approval.expired():
            expired = ev.ToolRejected(
                approval_id=approval.approval_id,
                by="system",
                reason=f"the approval expired at {approval.expires_at}",
                tool=approval.tool,
            )
            run.record(expired, "system", approval.requested_id)
            refusal = ("rejected_by_human", f"The approval expired at {approval.expires_at}")
        elif decision.action == "deny":
            said = f"{approval.by or 'a reviewer'}: {approval.reason or 'no reason given'}"
            refusal = ("rejected_by_human", f"The call was rejected by {said}")
        elif decision.action == "allow" and approval.approved_hash != arguments_hash(arguments):
            refusal = ("invalid_arguments", "The arguments differ from the ones a human approved")
        if refusal is None:
            return decision, decision.reason
        if not run.state.calls[call_id].observed:
            run.observe_refusal(call_id, error_type=refusal[0], error=refusal[1])
        return ToolDecision(call_id, "deny", refusal[1], call.rule, call.approval_id), refusal[1]

    def result(self, call_id: str, output: Any, error: str | None, kind: str, latency_ms: float) -> None:
        run = self.require_run()
        if call_id not in run.state.calls or run.state.calls[call_id].observed:
            return
        if error is None:
            run.tool_result(call_id, _jsonable(output), latency_ms=latency_ms)
        else:
            run.tool_result(call_id, error=error, error_type=kind, latency_ms=latency_ms)
        self.told.append(call_id)


class ClaudeAgentJournal:
    """Records the turns run through it (`query`, `resume`) as runs of the contract, under the recorder's policy.

    `side_effects`: tools (by the name the policy uses) claimed in the journal before they run, as is every
    call a human approved. `model_wait_s`: how long a tool's hook waits for the model message that asked for
    it to finish streaming (the CLI starts a tool as soon as its block is complete; its call is recorded
    after the message it belongs to)."""

    def __init__(
        self,
        recorder: RunRecorder,
        *,
        agent: str = "claude-agent",
        user_id: Who = None,
        tenant_id: Who = None,
        route: str | None = None,
        side_effects: Collection[str] = (),
        model_wait_s: float = 30.0,
    ) -> None:
        if not isinstance(recorder, RunRecorder):
            raise TypeError(
                f"ClaudeAgentJournal needs a RunRecorder (RunRecorder(journal, policy=...)), got {recorder!r}"
            )
        self.recorder = recorder
        self.agent = agent
        self.user_id = user_id
        self.tenant_id = tenant_id
        self.route = route
        self.side_effects = frozenset(side_effects)
        self.model_wait_s = model_wait_s
        self.writer: ThreadPoolExecutor | None = None
        """None on SQLite and in memory (records are written from the event loop's thread: a local append);
        one thread on a database server, so the event loop never waits on the network."""
        if not recorder.journal.url.startswith(("sqlite:", "memory:")):
            self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentjournal-claude")
            weakref.finalize(self, self.writer.shutdown, wait=False)
        self._turns: dict[str, _Turn] = {}

    def __repr__(self) -> str:
        return f"ClaudeAgentJournal(recording into {self.recorder.journal.url})"

    # ----- the turns ------------------------------------------------------------------------------

    def query(self, prompt: str, *, options: ClaudeAgentOptions | None = None) -> AsyncIterator[Any]:
        """One turn, as `claude_agent_sdk.query(prompt=..., options=...)`, recorded as a new run.

        A turn that continues a session (`options.resume`) forks it into a session named by the new run's
        id, so every run and its Claude session share one id."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise RecorderError(f"a run needs the user's prompt as non-empty text, got {prompt!r}")
        options = options or ClaudeAgentOptions()
        if options.continue_conversation:
            raise RecorderError("continue_conversation is not supported: pass the session to resume (options.resume)")
        run_id = uuid7()
        changes: dict[str, Any] = {"session_id": run_id}
        if options.resume:
            changes["fork_session"] = True
        turn = _Turn(self, run_id, prompt, None)
        return self._drive(turn, prompt, dataclasses.replace(options, **changes))

    def resume(self, run_id: str, *, options: ClaudeAgentOptions | None = None) -> AsyncIterator[Any]:
        """Continue a run that waits for a human (or that a crash left open): the CLI resumes its session and
        asks the PreToolUse hook about the held call again, which now has the reviewer's decision."""
        run_id = run_id.removeprefix("run-")
        run = self.recorder.resume(run_id)
        options = dataclasses.replace(options or ClaudeAgentOptions(), resume=run_id, session_id=None)
        turn = _Turn(self, run_id, None, run)
        done = asyncio.Event()

        async def until_done() -> AsyncIterator[dict[str, Any]]:
            await done.wait()  # the CLI reads the session from disk; stdin stays open until the turn ends
            return
            yield  # pragma: no cover - makes this an async generator

        return self._drive(turn, until_done(), options, done)

    async def _drive(
        self,
        turn: _Turn,
        prompt: str | AsyncIterable[dict[str, Any]],
        options: ClaudeAgentOptions,
        done: asyncio.Event | None = None,
    ) -> AsyncIterator[Any]:
        _check_offline(options)
        show_partial = options.include_partial_messages
        options = dataclasses.replace(options, hooks=self._hooks(options.hooks), include_partial_messages=True)
        self._turns[turn.run_id] = turn
        try:
            stream = cast(AsyncGenerator[Any, None], sdk_query(prompt=prompt, options=options))
            async with contextlib.aclosing(stream) as messages:
                async for message in messages:
                    if turn.failure is None:
                        try:
                            await self._read(turn, message)
                        except Exception as error:
                            # stop recording, and let the CLI end the turn: the next hook stops the session
                            # (closing the SDK's stream early would leave the CLI's last answers unread)
                            turn.failure = error
                    if isinstance(message, ResultMessage) and done is not None:
                        done.set()
                    if isinstance(message, StreamEvent) and not show_partial:
                        continue
                    yield message
            if turn.failure is not None:
                raise turn.failure
        except asyncio.CancelledError as error:
            turn.locked(turn.fail, error)
            raise
        except Exception as error:
            await turn.write(turn.fail, error)
            raise
        finally:
            self._turns.pop(turn.run_id, None)
            if done is not None:
                done.set()

    async def _read(self, turn: _Turn, message: Any) -> None:
        if isinstance(message, SystemMessage) and message.subtype == "init":
            await turn.write(turn.start, message.data)
        elif isinstance(message, StreamEvent):
            event, who = message.event, message.parent_tool_use_id
            kind = event.get("type")
            if kind == "message_start":
                start = event.get("message") or {}
                usage = start.get("usage") or {}
                inputs = sum(int(usage.get(key) or 0) for key in ("input_tokens", "cache_creation_input_tokens"))
                inputs += int(usage.get("cache_read_input_tokens") or 0)
                turn.streaming[who] = _Message(str(start.get("id") or uuid7()), str(start.get("model") or ""), inputs)
            elif kind == "message_delta" and who in turn.streaming:
                turn.streaming[who].output_tokens = int((event.get("usage") or {}).get("output_tokens") or 0)
            elif kind == "message_stop" and who in turn.streaming:
                finished = turn.streaming.pop(who)
                for call_id in await turn.write(turn.record_model, finished):
                    turn.waiter(call_id).set()
        elif isinstance(message, AssistantMessage):
            streaming = turn.streaming.get(message.parent_tool_use_id)
            if streaming is not None and message.message_id in (None, streaming.message_id):
                streaming.blocks.extend(message.content)
        elif isinstance(message, ResultMessage):
            await turn.write(turn.end, message)
        elif isinstance(message, UserMessage):
            pass  # tool results reach the run through the PostToolUse hooks, before the CLI sends them on

    # ----- the hooks ----------------------------------------------------------------------------------

    def _hooks(self, theirs: dict[Any, list[HookMatcher]] | None) -> dict[Any, list[HookMatcher]]:
        """The application's hooks with ours first, failing closed."""
        hooks: dict[Any, list[HookMatcher]] = {event: list(matchers) for event, matchers in (theirs or {}).items()}
        ours = {
            "PreToolUse": self._pre_tool_use,
            "PostToolUse": self._post_tool_use,
            "PostToolUseFailure": self._post_tool_use_failure,
        }
        for event, hook in ours.items():
            matcher = HookMatcher(hooks=[hook], timeout=HOOK_TIMEOUT_S, on_failure="block")
            hooks[event] = [matcher, *hooks.get(event, [])]
        return hooks

    def _turn_of(self, data: dict[str, Any]) -> _Turn:
        session = str(data.get("session_id") or "")
        turn = self._turns.get(session)
        if turn is None:
            raise RecorderError(
                f"Claude session {session!r} is not being recorded: run it with ClaudeAgentJournal.query or .resume"
            )
        return turn

    async def _pre_tool_use(self, data: Any, tool_use_id: str | None, context: HookContext) -> HookJSONOutput:
        turn = self._turn_of(data)
        call_id = str(tool_use_id or data.get("tool_use_id"))
        if turn.failure is not None:
            return _stop(turn.failure, deny=True)
        try:
            run = turn.require_run()
            if call_id not in run.state.calls:  # its ModelCalled first: the CLI runs a tool before the message ends
                await self._asked(turn, call_id)
            decision, reason = await turn.write(turn.decide, data["tool_name"], _jsonable(data["tool_input"]), call_id)
        except Exception as error:
            turn.failure = error
            return _stop(error, deny=True)
        if decision.action == "deny":
            return _output("deny", reason)
        if decision.action == "require_human_approval":
            return _output("defer", f"Waiting for a human to approve it (approval {decision.approval_id})")
        return {}  # allowed by the policy: the CLI's own permissions still apply

    async def _asked(self, turn: _Turn, call_id: str) -> None:
        """Wait until the model message that asked for `call_id` is recorded (it is still streaming, or its
        events are still on their way to this process); a call no message of this turn streams (a subagent's,
        when the CLI does not stream it) goes on after a short wait."""
        waiter, deadline = turn.waiter(call_id), time.monotonic() + self.model_wait_s
        quiet_since: float | None = None
        while not waiter.is_set():
            now = time.monotonic()
            if now >= deadline:
                raise RecorderError(
                    f"run {turn.run_id}: the model message asking for tool call {call_id} did not finish within "
                    f"{self.model_wait_s} s, so the call was not recorded and the CLI was told not to run it"
                )
            if turn.streaming:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= 0.5:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), 0.05)

    async def _post_tool_use(self, data: Any, tool_use_id: str | None, context: HookContext) -> HookJSONOutput:
        return await self._after(data, tool_use_id, data.get("tool_response"), None, "")

    async def _post_tool_use_failure(self, data: Any, tool_use_id: str | None, context: HookContext) -> HookJSONOutput:
        kind = "interrupted" if data.get("is_interrupt") else "ToolError"
        return await self._after(data, tool_use_id, None, str(data.get("error") or "the tool failed"), kind)

    async def _after(
        self, data: Any, tool_use_id: str | None, output: Any, error: str | None, kind: str
    ) -> HookJSONOutput:
        turn = self._turn_of(data)
        call_id = str(tool_use_id or data.get("tool_use_id"))
        latency = float(data.get("duration_ms") or 0.0)
        if turn.failure is not None:
            return _stop(turn.failure, deny=False)
        try:
            await turn.write(turn.result, call_id, output, error, kind, latency)
        except Exception as failure:
            turn.failure = failure
            return _stop(failure, deny=False)
        return {}
