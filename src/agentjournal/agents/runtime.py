"""The orchestrator: the single sequencer of a run. Every transition is an event on `run-<id>`.

Each batch is appended with the version the runtime last saw, so two workers can never
advance the same run: the loser gets a ConcurrencyError, reloads, and stops cleanly. The
next action is always decided from the folded RunState, which is why a run continues in any
process after a crash or an approval: the journal is the only state.

Results of read-only tools are appended together with the next model call (one write per
step); anything with a side effect, a decision or a human in the loop is written first.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel

from agentjournal.agents.agent import HANDOFF_PREFIX, Agent, RunOptions
from agentjournal.agents.approvals import ready_runs
from agentjournal.agents.blobs import BlobStore
from agentjournal.agents.events import (
    ApprovalRequested,
    BudgetExceeded,
    HandoffInitiated,
    ModelCalled,
    ObservationCaptured,
    PlanGenerated,
    PlanRejected,
    PolicyEvaluated,
    ResponseDrafted,
    ResponseFinalized,
    RunAborted,
    RunCancelled,
    RunCompleted,
    RunStarted,
    ToolExecuted,
    ToolFailed,
    ToolProposed,
    ToolRejected,
    register_run_events,
    run_stream,
)
from agentjournal.agents.models.base import Model, ModelError, ModelRequest, ModelResponse, ToolCall, chain_digest
from agentjournal.agents.planner import AgentPlan, PlanValidationError, validate_plan
from agentjournal.agents.state import RunState
from agentjournal.agents.tools import (
    Observation,
    Tool,
    ToolArgumentsError,
    UnknownToolError,
    execute,
    idempotency_key,
    validate_arguments,
)
from agentjournal.journal import ConcurrencyError, Journal, JournalError, NewEvent, RecordedEvent
from agentjournal.journal.context import current_context
from agentjournal.journal.envelope import canonical_json
from agentjournal.journal.ids import uuid7
from agentjournal.model import Repository

if TYPE_CHECKING:
    from agentjournal.agents.replay import ReplayResult

T = TypeVar("T")

_LOOKBACK = 500
"""How many of a run's newest events a resumed worker searches for a causation link."""

PLAN_INSTRUCTIONS = (
    "\n\nFirst reply with a plan only: one JSON object {runId, maxSteps (1-20), budgetUsd (0.01-10), "
    "steps: [{id, objective, tool, input, successCriteria}], stopConditions: [..]}. Tools: {tools}."
)


class RunError(JournalError):
    """A run that cannot be started or resumed as asked (unknown agent, finished run, ...)."""


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str
    """completed | aborted | cancelled | waiting_approval | running (when superseded)"""
    output: str | None
    state: RunState
    superseded: bool = False
    """True when another worker advanced the run and this one stopped without writing."""

    @property
    def reason(self) -> str | None:
        return self.state.reason

    @property
    def stream_id(self) -> str:
        return self.state.stream_id

    @property
    def pending_approvals(self) -> list[dict[str, Any]]:
        return self.state.pending_approvals()


class _Superseded(Exception):
    """The run's stream moved under this worker (another worker, a cancel, an approval)."""


def arguments_hash(arguments: dict[str, Any]) -> str:
    """What an approval is bound to: SHA-256 of the canonical JSON of the exact arguments shown."""
    return hashlib.sha256(canonical_json(arguments)).hexdigest()


def approval_id_for(run_id: str, call_id: str) -> str:
    return "apr-" + hashlib.sha256(f"{run_id}\n{call_id}".encode()).hexdigest()[:12]


class Executor(Protocol):
    """Runs one tool call; the default is `agents.tools.execute`. Replay substitutes recordings here."""

    async def __call__(
        self, tool: Tool, arguments: dict[str, Any], *, idempotency_key: str, calls_so_far: int, call_id: str
    ) -> Observation: ...


async def execute_tool(
    tool: Tool, arguments: dict[str, Any], *, idempotency_key: str, calls_so_far: int, call_id: str
) -> Observation:
    return await execute(tool, arguments, idempotency_key=idempotency_key, calls_so_far=calls_so_far)


class Runtime:
    """Runs agents and records every transition; resumes, cancels and replays runs by id."""

    def __init__(
        self,
        journal: Journal,
        *,
        agents: Sequence[Agent] = (),
        options: RunOptions | None = None,
        offload_io: bool | None = None,
        executor: Executor = execute_tool,
    ) -> None:
        self.journal = journal
        self.executor = executor
        self.options = options or RunOptions()
        register_run_events(journal.registry)
        self.repository: Repository[RunState] = Repository(journal, RunState)
        self.blobs = BlobStore(journal)
        self.agents: dict[str, Agent] = {}
        # Local stores are faster than a thread hop; a server round trip must not block the event loop.
        self.offload_io = journal.backend_name not in ("sqlite", "memory") if offload_io is None else offload_io
        for agent in agents:
            self.register(agent)

    def register(self, agent: Agent) -> Agent:
        """Make `agent` (and the Agent objects it hands off to) resolvable by name for resumes and handoffs."""
        known = self.agents.get(agent.name)
        if known is not None and known is not agent:
            raise RunError(f"another agent named {agent.name!r} is already registered")
        self.agents[agent.name] = agent
        for target in agent.handoffs:
            if isinstance(target, Agent) and target.name not in self.agents:
                self.register(target)
        return agent

    def agent(self, name: str) -> Agent:
        try:
            return self.agents[name]
        except KeyError:
            known = ", ".join(sorted(self.agents)) or "(none)"
            raise RunError(f"agent {name!r} is not registered with this runtime; registered: {known}") from None

    # ----- the public API ----------------------------------------------------------------------

    async def run(
        self,
        agent: Agent,
        input: str,
        *,
        run_id: str | None = None,
        user_id: str | None = None,
        tenant_id: str | None = None,
        route: str | None = None,
        options: RunOptions | None = None,
    ) -> RunResult:
        """Start a run and drive it until it completes, aborts, is cancelled or waits for a human."""
        self.register(agent)
        options = options or self.options
        run_id = run_id or uuid7()
        stream = run_stream(run_id)
        if not isinstance(input, str) or not input.strip():
            raise RunError(f"run {run_id}: the input must be non-empty text, got {input!r}")
        run = _Run(self, self.repository.create(stream), agent, options)
        started = RunStarted(
            run_id=run_id.removeprefix("run-"),
            agent=agent.name,
            agent_version=agent.version,
            model=agent.model.name,
            prompt_version=agent.prompt_version,
            tool_schemas=agent.tool_schema_hashes(),
            policy_version=agent.policy.version if agent.policy else None,
            route=route,
            input=input,
            user_id=user_id,
            limits=options.limits(),
        )
        event_id = uuid7()
        run.correlation_id = current_context().correlation_id or event_id
        run.stage(started, actor="orchestrator", tenant_id=tenant_id, event_id=event_id, caused_by=None)
        try:
            await run.flush()
        except _Superseded:
            raise RunError(f"run {run_id} already exists in {self.journal.url}") from None
        return await run.drive()

    def run_sync(self, agent: Agent, input: str, **options: Any) -> RunResult:
        """`run` for code without an event loop."""
        return asyncio.run(self.run(agent, input, **options))

    async def resume(self, run_id: str, *, options: RunOptions | None = None) -> RunResult:
        """Continue a run from its journal (after a crash, a restart or a human decision)."""
        state = await self._io(self.load, run_id)
        if state.finished:
            return RunResult(state.run_id, state.status, state.final_response, state)
        limits = state.limits
        options = options or replace(
            self.options,
            max_steps=limits.get("max_steps", self.options.max_steps),
            budget_usd=limits.get("budget_usd"),
            budget_tokens=limits.get("budget_tokens"),
            max_attempts=limits.get("max_attempts", self.options.max_attempts),
        )
        run = _Run(self, state, self.agent(state.agent), options)
        run.correlation_id = state.correlation_id
        return await run.drive()

    def resume_sync(self, run_id: str, **options: Any) -> RunResult:
        return asyncio.run(self.resume(run_id, **options))

    async def replay(self, run_id: str) -> ReplayResult:
        """Re-execute run `run_id` with this runtime's agents and the recorded replies (see agents.replay)."""
        from agentjournal.agents.replay import replay  # replay builds on the runtime

        return await replay(self.journal, run_id, list(self.agents.values()))

    async def resume_ready(self) -> list[RunResult]:
        """Resume every run a human decision unblocked (what a worker's resume loop calls)."""
        return [await self.resume(run_id) for run_id in await self._io(ready_runs, self.journal)]

    async def serve(
        self,
        should_stop: Callable[[], bool],
        *,
        every_s: float = 1.0,
        report: Callable[[str, RunResult | Exception], None] | None = None,
    ) -> None:
        """Resume runs as humans unblock them, until `should_stop()`: the resume loop of a worker.

        A run that cannot be resumed here (e.g. its agent is not registered) is reported once and
        left alone, so one bad run does not stop the others.
        """
        given_up: set[str] = set()
        while not should_stop():
            for run_id in await self._io(ready_runs, self.journal):
                if run_id in given_up or should_stop():
                    continue
                try:
                    outcome: RunResult | Exception = await self.resume(run_id)
                except RunError as exc:
                    given_up.add(run_id)
                    outcome = exc
                if report is not None:
                    report(run_id, outcome)
            deadline = time.monotonic() + every_s
            while not should_stop() and time.monotonic() < deadline:
                await asyncio.sleep(min(0.05, every_s))

    def load(self, run_id: str) -> RunState:
        return self.repository.load(run_stream(run_id))

    def load_at_step(self, run_id: str, step: int) -> RunState:
        """The run as it was at the end of step `step`: what the agent knew before its next model call."""
        stream = run_stream(run_id)
        if step < 0:
            raise RunError(f"run {run_id}: steps start at 0 (the user's message), got {step}")
        if step == 0:
            return self.repository.load_at_version(stream, 1)
        events = self.journal.read_stream(stream)
        if not events:
            raise RunError(f"no run {run_id!r} in {self.journal.url}")
        steps = [e for e in events if e.type == "ModelCalled" or (e.type == "ToolProposed" and e.data["step"] > 0)]
        last = max((int(e.data["step"]) for e in steps), default=0)
        if step > last:
            raise RunError(f"run {run_id} has steps 0..{last}; there is no step {step}")
        after = next((e.version for e in steps if int(e.data["step"]) > step), events[-1].version + 1)
        return self.repository.load_at_version(stream, after - 1)

    def cancel(self, run_id: str, reason: str = "cancelled", *, by: str | None = None) -> bool:
        """Append RunCancelled unless the run has finished; a worker advancing it stops at its next write.

        Returns False when the run had already finished.
        """
        stream = run_stream(run_id)
        while True:
            state = self.repository.load(stream)
            if state.finished:
                return False
            event = NewEvent(
                "RunCancelled",
                RunCancelled(reason=reason, by=by).model_dump(mode="json"),
                actor=by or "orchestrator",
                tenant_id=state.tenant_id,
                correlation_id=state.correlation_id,
            )
            try:
                self.journal.append(stream, [event], expected_version=state.version)
            except ConcurrencyError:
                continue
            return True

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        if self.offload_io:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)


class _Run:
    """One worker's hold on one run: the folded state plus events staged but not yet written."""

    def __init__(self, runtime: Runtime, state: RunState, agent: Agent, options: RunOptions) -> None:
        self.runtime = runtime
        self.journal = runtime.journal
        self.state = state
        self.agent = agent
        self.options = options
        self.stored_version = state.version
        self.buffer: list[NewEvent] = []
        self.correlation_id: str | None = state.correlation_id
        self.tenant_id: str | None = state.tenant_id
        self.ids: dict[int, str] = {}
        """Event id by version, for causation links (filled as events are staged or looked up)."""
        self.by_call: dict[tuple[str, str], str] = {}
        """Event id by (call or approval id, event type), for the events this worker staged."""
        self.model_id: str | None = None
        self.plan_id: str | None = None
        self._wire: list[dict[str, Any]] = []
        self._digests: list[bytes] = []

    # ----- writing ---------------------------------------------------------------------------

    def stage(
        self,
        payload: BaseModel,
        *,
        actor: str,
        caused_by: str | None,
        tenant_id: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """Fold an event into the state now and queue it for the next write; returns its event id."""
        event_id = event_id or uuid7()
        data = payload.model_dump(mode="json")
        kind = type(payload).__name__
        tenant_id = tenant_id or self.tenant_id
        event = NewEvent(
            kind,
            data,
            event_id=event_id,
            actor=actor,
            tenant_id=tenant_id,
            correlation_id=self.correlation_id,
            causation_id=caused_by,
        )
        self.buffer.append(event)
        for key in ("call_id", "approval_id"):
            if isinstance(data.get(key), str):
                self.by_call[(data[key], kind)] = event_id
        version = self.state.version + 1
        self.ids[version] = event_id
        self.state.apply(
            RecordedEvent(
                event_id=event_id,
                stream_id=self.state.stream_id,
                version=version,
                position=0,
                type=kind,
                schema_version=1,
                recorded_at=datetime.now(UTC),
                actor=actor,
                tenant_id=tenant_id,
                correlation_id=self.correlation_id,
                causation_id=caused_by,
                traceparent=None,
                data_json=b"",
                metadata_json=b"{}",
                prev_hash="",
                hash="",
                data=data,
            )
        )
        if kind == "RunStarted":
            self.tenant_id = tenant_id
        return event_id

    async def flush(self) -> None:
        """Write every staged event in one batch at the version this worker last saw."""
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        try:
            result = await self.runtime._io(self.journal.append, self.state.stream_id, batch, self.stored_version)
        except ConcurrencyError:
            raise _Superseded from None
        self.stored_version = result.last_version

    def event_id(self, version: int | None) -> str | None:
        """The id of this run's event at `version` (looked up once for events written by an earlier worker)."""
        if version is None:
            return None
        if version not in self.ids:
            found = self.journal.read_stream(self.state.stream_id, version, version)
            if found:
                self.ids[version] = found[0].event_id
        return self.ids.get(version)

    # ----- the loop --------------------------------------------------------------------------

    async def drive(self) -> RunResult:
        try:
            try:
                while not self.state.finished:
                    if not await self.advance():
                        break
                await self.flush()
            except asyncio.CancelledError:
                await self._cancelled_by_caller()
                raise
        except _Superseded:
            state = await self.runtime._io(self.runtime.load, self.state.run_id)
            return RunResult(state.run_id, state.status, state.final_response, state, superseded=True)
        state = self.state
        return RunResult(state.run_id, state.status, state.final_response, state)

    async def _cancelled_by_caller(self) -> None:
        """Record the cancellation (with whatever was staged before it) unless the run had finished."""
        if self.state.finished:
            return
        self.stage(RunCancelled(reason="the calling task was cancelled"), actor="orchestrator", caused_by=None)
        with contextlib.suppress(_Superseded):
            await self.flush()

    async def advance(self) -> bool:
        """Take the next step; False when the run must wait (for a human)."""
        state = self.state
        open_calls = state.open_calls()
        if open_calls:
            return await self.resolve(open_calls[0])
        if self.agent.name != state.agent:
            self.agent = self.runtime.agent(state.agent)
        if self.agent.planner and state.plan is None:
            await self.plan()
            return True
        if state.plan is not None and await self.propose_plan_step():
            return True
        await self.model_turn()
        return True

    # ----- model turns -----------------------------------------------------------------------

    def over_budget(self) -> BudgetExceeded | None:
        state, options = self.state, self.options
        budget_usd = options.budget_usd
        if state.plan is not None:
            plan_budget = float(state.plan["budgetUsd"])
            budget_usd = plan_budget if budget_usd is None else min(budget_usd, plan_budget)
        if budget_usd is not None and state.cost_usd > budget_usd:
            return BudgetExceeded(kind="usd", limit=budget_usd, spent=round(state.cost_usd, 8))
        if options.budget_tokens is not None and state.tokens > options.budget_tokens:
            return BudgetExceeded(kind="tokens", limit=options.budget_tokens, spent=state.tokens)
        return None

    def max_steps(self) -> int:
        if self.state.plan is not None:
            return min(self.options.max_steps, int(self.state.plan["maxSteps"]) + 1)
        return self.options.max_steps

    async def abort(self, reason: str, caused_by: str | None) -> None:
        self.stage(RunAborted(reason=reason), actor="orchestrator", caused_by=caused_by)
        await self.flush()

    def wire_messages(self) -> tuple[list[dict[str, Any]], bytes]:
        """The conversation as the model sees it, and a running digest of it; both grow incrementally."""
        messages = self.state.messages
        start = max(0, len(self._wire) - 1)  # the last message may have changed (a plan adds its calls)
        del self._wire[start:], self._digests[start:]
        for message in messages[start:]:
            wire = self.state.render(message, self.runtime.blobs.get)
            self._wire.append(wire)
            self._digests.append(chain_digest(self._digests[-1] if self._digests else b"", wire))
        return list(self._wire), (self._digests[-1] if self._digests else b"")

    def new_messages(self) -> list[dict[str, Any]]:
        """Messages added since the previous model call, as references to the events that hold them."""
        added: list[dict[str, Any]] = []
        for message in reversed(self.state.messages):
            if message["role"] == "assistant":
                break
            entry = {"role": message["role"], "ref": message["_v"]}
            if "tool_call_id" in message:
                entry["tool_call_id"] = message["tool_call_id"]
            added.append(entry)
        added.reverse()
        return added

    def request(self, *, planning: bool = False, final: bool = False) -> tuple[ModelRequest, str]:
        agent = self.agent
        instructions = agent.instructions
        if planning:
            instructions += PLAN_INSTRUCTIONS.replace("{tools}", ", ".join(agent.registry.names()))
        messages, digest = self.wire_messages()
        tools = [] if (planning or final) else agent.tool_specs()
        request = ModelRequest(instructions, messages, tools, json_output=planning)
        return request, request.fingerprint(agent.model.name, digest)

    async def call_model(self, request: ModelRequest) -> tuple[ModelResponse, float]:
        model: Model = self.agent.model
        last_error: Exception | None = None
        for attempt in range(1, self.options.max_attempts + 1):
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.options.model_timeout_s):  # no extra task, unlike wait_for
                    response = await model.request(request)
                return response, round((time.perf_counter() - started) * 1000, 3)
            except TimeoutError:
                last_error = ModelError(f"no reply within {self.options.model_timeout_s:g} s")
            except ModelError:
                raise
            except (ConnectionError, OSError) as exc:
                last_error = exc
            if attempt < self.options.max_attempts:
                await asyncio.sleep(self.options.backoff(attempt))
        raise ModelError(f"{model.name}: {last_error} (after {self.options.max_attempts} attempts)")

    async def model_turn(self, *, planning: bool = False) -> ModelResponse | None:
        """One model call, recorded with what it decided; None when the run ended instead."""
        state = self.state
        last_id = self.event_id(state.messages[-1]["_v"]) if state.messages else None
        exceeded = self.over_budget()
        if exceeded is not None:
            budget_id = self.stage(exceeded, actor="orchestrator", caused_by=last_id)
            await self.abort(_budget_reason(exceeded), budget_id)
            return None
        if state.step >= self.max_steps():
            await self.abort(f"reached the limit of {self.max_steps()} steps without an answer", last_id)
            return None
        final = state.plan is not None and not planning
        request, fingerprint = self.request(planning=planning, final=final)
        try:
            response, latency_ms = await self.call_model(request)
        except ModelError as exc:
            await self.abort(f"the model call at step {state.step + 1} failed: {exc}", last_id)
            return None
        step = state.step + 1
        model_id = self.stage(
            ModelCalled(
                model=response.model or self.agent.model.name,
                request_fingerprint=fingerprint,
                new_messages=self.new_messages(),
                response=response.to_dict(),
                input_tokens=response.input_tokens,
                output_tokens=response.output_tokens,
                cost_usd=response.cost_usd,
                latency_ms=latency_ms,
                step=step,
                agent=self.agent.name,
                purpose="plan" if planning else "act",
            ),
            actor=f"model:{response.model or self.agent.model.name}",
            caused_by=last_id,
        )
        exceeded = self.over_budget()
        if exceeded is not None:
            budget_id = self.stage(exceeded, actor="orchestrator", caused_by=model_id)
            await self.abort(_budget_reason(exceeded), budget_id)
            return None
        if planning:
            self.model_id = model_id
            return response
        ids = [call.id for call in response.tool_calls]
        reused = sorted({i for i in ids if i in self.state.calls or ids.count(i) > 1})
        if reused and not final:
            await self.abort(f"the model reused tool call id(s) {', '.join(reused)} at step {step}", model_id)
            return None
        if response.tool_calls and not final:
            for call in response.tool_calls:
                if self.state.finished:
                    break
                self.propose(call, step, model_id)
        else:
            await self.respond(response.text or "", model_id)
        await self.flush()
        return response

    async def respond(
        self, text: str, caused_by: str, *, outcome: Literal["answered", "fallback"] = "answered"
    ) -> None:
        draft_id = self.stage(
            ResponseDrafted(text=text, agent=self.agent.name), actor=self.agent.name, caused_by=caused_by
        )
        final_id = self.stage(ResponseFinalized(text=text), actor="orchestrator", caused_by=draft_id)
        self.stage(RunCompleted(outcome=outcome), actor="orchestrator", caused_by=final_id)
        await self.flush()

    # ----- planning (seed 001's contract) ----------------------------------------------------

    async def plan(self) -> None:
        response = await self.model_turn(planning=True)
        if response is None:
            return
        model_id = self.model_id
        try:
            plan: AgentPlan = validate_plan(response.text or "", self.agent.registry.names())
        except PlanValidationError as exc:
            rejected = self.stage(
                PlanRejected(errors=exc.errors, fallback=self.agent.fallback_response),
                actor="planner",
                caused_by=model_id,
            )
            await self.respond(self.agent.fallback_response, rejected, outcome="fallback")
            return
        self.plan_id = self.stage(PlanGenerated(plan=plan.model_dump(mode="json")), actor="planner", caused_by=model_id)
        await self.flush()

    async def propose_plan_step(self) -> bool:
        """Propose the next plan step as a tool call; False when every step has been proposed."""
        plan = self.state.plan or {}
        proposed = {call["call_id"] for call in self.state.calls.values()}
        for step in plan.get("steps", []):
            call_id = "plan-" + step["id"]
            if call_id in proposed:
                continue
            if self.state.step >= self.max_steps():
                return False
            caused_by = self.plan_id or self._find("", ("PlanGenerated",))
            self.propose(ToolCall(call_id, step["tool"], dict(step["input"])), self.state.step + 1, caused_by)
            await self.flush()
            return True
        return False

    # ----- tool calls ------------------------------------------------------------------------

    def propose(self, call: ToolCall, step: int, caused_by: str | None) -> None:
        """Record a proposed call and the policy's decision on it (handoffs switch the agent)."""
        agent = self.agent
        if call.name.startswith(HANDOFF_PREFIX) and call.name.removeprefix(HANDOFF_PREFIX) in agent.handoff_names:
            target = call.name.removeprefix(HANDOFF_PREFIX)
            if target not in self.runtime.agents:
                known = ", ".join(sorted(self.runtime.agents))
                reason = f"{agent.name} handed off to {target!r}, which this runtime does not know (known: {known})"
                self.stage(RunAborted(reason=reason), actor="orchestrator", caused_by=caused_by)
                return
            reason = str(call.arguments.get("reason") or f"{agent.name} handed over to {target}")
            handoff_id = self.stage(
                HandoffInitiated(from_agent=agent.name, to_agent=target, reason=reason, call_id=call.id),
                actor="orchestrator",
                caused_by=caused_by,
            )
            self.stage(
                ObservationCaptured(tool=call.name, call_id=call.id, ok=True),
                actor="orchestrator",
                caused_by=handoff_id,
            )
            return
        proposed_id = self.stage(
            ToolProposed(tool=call.name, arguments=call.arguments, step=step, call_id=call.id, agent=agent.name),
            actor=agent.name,
            caused_by=caused_by,
        )
        try:
            tool = agent.registry.get(call.name)
            arguments = validate_arguments(tool, call.arguments)
        except UnknownToolError as exc:
            self.observe_failure(call.id, call.name, "unknown_tool", str(exc), proposed_id)
            return
        except ToolArgumentsError as exc:
            self.observe_failure(call.id, call.name, "invalid_arguments", str(exc), proposed_id)
            return
        if agent.policy is None:
            return
        decision = agent.policy.evaluate(tool.name, arguments, self.state.run_metrics())
        decision_id = self.stage(
            PolicyEvaluated(
                tool=tool.name, rule=decision.rule, action=decision.action, reason=decision.reason, call_id=call.id
            ),
            actor="policy_guard",
            caused_by=proposed_id,
        )
        if decision.action == "deny":
            self.observe_failure(call.id, tool.name, "policy_denied", decision.reason, decision_id)
        elif decision.action == "require_human_approval":
            ttl = self.options.approval_ttl_s
            expires = (datetime.now(UTC) + timedelta(seconds=ttl)).isoformat() if ttl else None
            self.stage(
                ApprovalRequested(
                    approval_id=approval_id_for(self.state.run_id, call.id),
                    tool=tool.name,
                    arguments=arguments,
                    arguments_hash=arguments_hash(arguments),
                    expires_at=expires,
                    call_id=call.id,
                ),
                actor="policy_guard",
                caused_by=decision_id,
            )

    def observe_failure(self, call_id: str, tool: str, error_type: str, error: str, caused_by: str | None) -> None:
        self.stage(
            ObservationCaptured(tool=tool, call_id=call_id, ok=False, error_type=error_type, error=error),
            actor="orchestrator",
            caused_by=caused_by,
        )

    async def resolve(self, call: dict[str, Any]) -> bool:
        """Move one open call forward: wait for a human, execute it, or observe its outcome."""
        call_id = call["call_id"]
        if call["status"] == "executed":
            self.stage(
                ObservationCaptured(tool=call["tool"], call_id=call_id, ok=True),
                actor="orchestrator",
                caused_by=self.event_id(call["executed_v"]),
            )
            return True
        if call["status"] == "failed":
            failed = self._last_failure_id(call)
            self.observe_failure(call_id, call["tool"], call["error_type"], call["error"], failed)
            await self.flush()
            return True
        caused_by = self._decision_id(call)
        approval = self.state.approvals.get(call["approval_id"]) if call["approval_id"] else None
        if approval is not None:
            if approval["status"] == "pending":
                if _expired(approval):
                    self.stage(
                        ToolRejected(
                            approval_id=approval["approval_id"],
                            by="system",
                            reason=f"the approval expired at {approval['expires_at']}",
                            tool=call["tool"],
                        ),
                        actor="orchestrator",
                        caused_by=caused_by,
                    )
                    await self.flush()
                    return True
                await self.flush()
                return False
            caused_by = self._approval_decision_id(approval) or caused_by
            if approval["status"] == "rejected":
                reason = f"{approval['by']} rejected the call: {approval['reason']}"
                self.observe_failure(call_id, call["tool"], "rejected_by_human", reason, caused_by)
                await self.flush()
                return True
            shown = approval["arguments_hash"]
            if arguments_hash(approval["arguments"]) != shown or approval.get("approved_hash") != shown:
                raise RunError(
                    f"call {call_id}: the approved arguments do not match the arguments shown; refusing to run it"
                )
            await self.execute(call, approval["arguments"], caused_by)
            return True
        await self.execute(call, call["arguments"], caused_by)
        return True

    def _decision_id(self, call: dict[str, Any]) -> str | None:
        """The event that last authorised the call: its policy decision, or its proposal."""
        return self._find(call["call_id"], ("PolicyEvaluated", "ToolProposed"))

    def _approval_decision_id(self, approval: dict[str, Any]) -> str | None:
        return self._find(approval["call_id"], ("ToolApproved", "ToolRejected"), approval["approval_id"])

    def _last_failure_id(self, call: dict[str, Any]) -> str | None:
        return self._find(call["call_id"], ("ToolFailed",))

    def _find(self, call_id: str, types: tuple[str, ...], approval_id: str | None = None) -> str | None:
        """The newest event of `types` about a call: staged by this worker, or else read from the run."""
        for kind in types:
            for key in (call_id, approval_id):
                if key and (key, kind) in self.by_call:
                    return self.by_call[(key, kind)]
        for event in self.journal.read_stream(self.state.stream_id, backwards=True, limit=_LOOKBACK):
            data = event.data
            if event.type in types and (
                not call_id
                or data.get("call_id") == call_id
                or (approval_id and data.get("approval_id") == approval_id)
            ):
                return event.event_id
        return None

    async def execute(self, call: dict[str, Any], arguments: dict[str, Any], caused_by: str | None) -> None:
        """Run the tool, retrying transient failures with backoff; every try is an event."""
        tool: Tool = self.runtime.agent(call["agent"]).registry.get(call["tool"])
        if self.options.tool_timeout_s is not None and tool.timeout_s > self.options.tool_timeout_s:
            tool = replace(tool, timeout_s=self.options.tool_timeout_s)
        if tool.side_effecting or call["approval_id"]:
            await self.flush()  # the decision to act is durable before the act
        key = idempotency_key(self.state.run_id, f"{call['step']}.{call['index']}", tool.name)
        calls_so_far = self.state.metrics.calls_by_tool.get(tool.name, 0)
        attempt = call["attempts"]
        while True:
            attempt += 1
            observation = await self.runtime.executor(
                tool, arguments, idempotency_key=key, calls_so_far=calls_so_far, call_id=call["call_id"]
            )
            if observation.ok:
                self.record_output(call, tool, observation, attempt, caused_by)
                if tool.side_effecting or call["approval_id"]:
                    await self.flush()
                return
            retry = observation.retryable and attempt < self.options.max_attempts
            failed_id = self.stage(
                ToolFailed(
                    tool=tool.name,
                    error_type=observation.error_type or "error",
                    error=observation.error or "",
                    attempt=attempt,
                    will_retry=retry,
                    call_id=call["call_id"],
                    latency_ms=observation.latency_ms,
                ),
                actor="tool_executor",
                caused_by=caused_by,
            )
            await self.flush()
            if not retry:
                self.observe_failure(
                    call["call_id"], tool.name, observation.error_type or "error", observation.error or "", failed_id
                )
                return
            await asyncio.sleep(self.options.backoff(attempt))

    def record_output(
        self, call: dict[str, Any], tool: Tool, observation: Observation, attempt: int, caused_by: str | None
    ) -> None:
        output = observation.output
        encoded = canonical_json(output)
        large = len(encoded) > self.options.blob_threshold_bytes
        executed_id = self.stage(
            ToolExecuted(
                tool=tool.name,
                output=None if large else output,
                output_ref=self.runtime.blobs.put(output, encoded) if large else None,
                latency_ms=observation.latency_ms,
                attempt=attempt,
                call_id=call["call_id"],
                cost_usd=observation.cost_usd,
            ),
            actor="tool_executor",
            caused_by=caused_by,
        )
        self.stage(
            ObservationCaptured(tool=tool.name, call_id=call["call_id"], ok=True),
            actor="orchestrator",
            caused_by=executed_id,
        )


def _budget_reason(exceeded: BudgetExceeded) -> str:
    if exceeded.kind == "usd":
        return f"budget exceeded: spent ${exceeded.spent:.4f} of the ${exceeded.limit:.4f} allowed"
    return f"budget exceeded: used {int(exceeded.spent)} tokens of the {int(exceeded.limit)} allowed"


def _expired(approval: dict[str, Any]) -> bool:
    expires = approval.get("expires_at")
    return isinstance(expires, str) and datetime.fromisoformat(expires) <= datetime.now(UTC)
