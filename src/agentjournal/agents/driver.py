"""The driver: performs what the decider decides, and writes every transition to the run's stream.

One driver holds one run in one worker: the folded state and the events staged but not yet
written. Each batch is appended at the version the driver last saw, so two workers can never
both advance a run: the loser gets a ConcurrencyError and stops without acting. A call with a
side effect is claimed (ToolClaimed, appended alone) before it runs, so a worker that loses the
claim never executes it.

Every effect runs off the event loop's thread: journal reads and writes through the
AsyncJournal, blobs and memory on worker threads, models and tools as awaitables. The replay
driver (agents.replay) is this class with the effects answered from a recording.

Nothing escapes a run: a model that fails ends it with RunAborted and the reason; an
unexpected exception inside the runtime does too (with its type); only a journal that cannot
be written leaves the run as it was, resumable, and raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agentjournal.agents import decider
from agentjournal.agents.agent import RunOptions
from agentjournal.agents.blobs import BlobStore
from agentjournal.agents.decider import AskModel, Draft, FetchBlobs, Recall, Record, RunTool, Turn, Wait
from agentjournal.agents.models.base import ModelError, ModelResponse
from agentjournal.agents.tools import Observation, RunContext, execute
from agentjournal.journal import (
    AsyncJournal,
    ConcurrencyError,
    JournalError,
    NewEvent,
    StreamClosedError,
)
from agentjournal.journal.context import current_traceparent
from agentjournal.journal.envelope import canonical_json
from agentjournal.journal.errors import AgentJournalError
from agentjournal.journal.ids import uuid7
from agentjournal.runs import RunState, new_event, tracing
from agentjournal.runs import events as ev
from agentjournal.runs.state import Approval, Claim

if TYPE_CHECKING:
    from agentjournal.agents.runtime import Runtime

__all__ = ["Driver", "RunError", "RunResult", "Superseded", "resumed_options", "worker_name"]

logger = logging.getLogger("agentjournal.agents")


class RunError(JournalError):
    """A run that cannot be started or resumed as asked (unknown agent, finished run, ...)."""


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str
    """completed | aborted | cancelled | waiting_approval | running (superseded, or waiting for a claim)"""
    output: str | None
    state: RunState
    superseded: bool = False
    """True when another worker advanced the run and this one stopped without writing."""
    waiting: str | None = None
    """Why the run stopped without finishing: the approval or the claim it waits for."""

    @property
    def reason(self) -> str | None:
        return self.state.reason

    @property
    def stream_id(self) -> str:
        return self.state.stream_id

    @property
    def pending_approvals(self) -> list[Approval]:
        return self.state.pending_approvals()


_EXECUTING: set[tuple[str, str]] = set()
"""(run id, call id) of the claimed calls this process is executing right now."""


def worker_name() -> str:
    """Who a claim names: the host, the process and a suffix for the runtime (`host/pid/suffix`)."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid7()[-6:]}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStopped(AgentJournalError):
    """An effect ended the run on purpose (an evaluation with no recorded result for a call, ...):
    the run is aborted with this message as its reason."""


class Superseded(AgentJournalError):
    """The run's stream moved under this driver (another worker, a cancel, an approval)."""


class Driver:
    """Drives one run until it finishes or must wait; the live effects (models, tools, journal)."""

    def __init__(self, runtime: Runtime, state: RunState, options: RunOptions) -> None:
        self.runtime = runtime
        self.journal: AsyncJournal = runtime.async_journal
        self.state = state
        self.options = options
        self.stored_version = state.version
        self.buffer: list[NewEvent] = []
        self.correlation_id: str | None = state.correlation_id
        self.tenant_id: str | None = state.tenant_id
        self.blobs: dict[str, Any] = {}
        self.wire = decider.WireCache()
        self.redact: Callable[[dict[str, Any]], dict[str, Any]] | None = runtime.journal.redact
        self.tracing = tracing.enabled()  # checked once: with no tracer provider, no span is ever made
        self.span: tracing.Span | None = None
        """The run's span, started when RunStarted is staged (a resumed run starts its own in `drive`)."""

    # ----- the loop ------------------------------------------------------------------------------

    def turn(self) -> Turn:
        now = datetime.now(UTC)
        return Turn(
            agents=self.runtime.agents,
            options=self.options,
            now=now,
            worker=self.runtime.worker,
            new_id=uuid7,
            blobs=self.blobs,
            wire=self.wire,
            claim_alive=lambda call_id, claim: self.claim_alive(call_id, claim, now),
        )

    def claim_alive(self, call_id: str, claim: Claim, now: datetime) -> bool:
        """Is the worker that claimed `call_id` still at it? A claim past its expiry never is; a claim of
        this host is alive while its process lives (and, for this process, while it runs the call)."""
        if claim.expired(now):
            return False
        host, _, rest = claim.worker.partition("/")
        pid = rest.partition("/")[0]
        if host != socket.gethostname() or not pid.isdigit():
            return True
        if int(pid) == os.getpid():
            return (self.state.run_id, call_id) in _EXECUTING
        return _process_alive(int(pid))

    async def drive(self) -> RunResult:
        if not self.tracing:
            return await self._drive()
        if self.span is None:  # a resumed run continues the trace of its RunStarted
            first = await self.journal.read_stream(self.state.stream_id, 1, 1)
            self.span = self._run_span(parent=first[0].traceparent if first else None)
            tracing.decided_approvals(self.span, self.state)
        span, metrics = self.span, self.state.metrics
        tokens = (metrics.input_tokens, metrics.output_tokens)
        with tracing.activate(span):
            result = await self._drive()
            tracing.finish_run(span, result.state, waiting=result.waiting, tokens_before=tokens)
        self.span = None
        return result

    def _run_span(self, parent: str | None, started: ev.RunStarted | None = None) -> tracing.Span:
        state = self.state
        name, model = (started.agent, started.model) if started else (state.agent, state.model)
        agent = self.runtime.agents.get(name)
        return tracing.start_run_span(
            state.run_id,
            name,
            model=model,
            provider=tracing.provider_of(agent.model) if agent is not None else None,
            agent_version=started.agent_version if started else state.agent_version,
            parent=parent,
            resumed=started is None,
        )

    async def _drive(self) -> RunResult:
        waiting: Wait | None = None
        try:
            try:
                while True:
                    decision = decider.decide(self.state, self.turn())
                    if isinstance(decision, decider.Done):
                        break
                    if isinstance(decision, Wait):
                        await self.flush()
                        if await self.waiting(decision):
                            continue
                        waiting = decision
                        break
                    await self.perform(decision)
                await self.flush()
            except asyncio.CancelledError:
                await self._cancelled_by_caller()
                raise
            except (Superseded, JournalError):
                raise
            except Exception as exc:
                await self._failed(exc)
        except Superseded:
            state = await self.runtime.aload(self.state.run_id)
            return RunResult(state.run_id, state.status, state.final_response, state, superseded=True)
        state = self.state
        return RunResult(
            state.run_id, state.status, state.final_response, state, waiting=waiting.reason if waiting else None
        )

    async def perform(self, decision: decider.Decision) -> None:
        if isinstance(decision, Record):
            self.stage_all(decision.events)
            if decision.durable:
                await self.flush()
        elif isinstance(decision, AskModel):
            with self._chat_span(decision) if self.tracing else tracing.NO_SPAN as span:
                try:
                    response, latency_ms = await self.call_model(decision)
                except ModelError as exc:
                    tracing.model_failed(span, exc)
                    self.stage_all(decider.model_failed(self.state, self.turn(), decision, str(exc)).events)
                    await self.flush()
                    return
                tracing.model_replied(
                    span, model=response.model, input_tokens=response.input_tokens, output_tokens=response.output_tokens
                )
                await self.perform(decider.model_replied(self.state, self.turn(), decision, response, latency_ms))
        elif isinstance(decision, RunTool):
            if decision.delay_s:
                await asyncio.sleep(decision.delay_s)
            key = (self.state.run_id, decision.call_id)
            if decision.claim:
                _EXECUTING.add(key)  # before the claim is visible, so a worker of this process never takes it
            try:
                with self._tool_span(decision) if self.tracing else tracing.NO_SPAN as span:
                    if decision.claim:
                        self.stage(decider.tool_claimed(self.state, self.turn(), decision))
                        await self.flush()  # the claim is durable before the act; a worker that loses it stops here
                    observation = await self.run_tool(decision)
                    tracing.tool_finished(span, ok=observation.ok, error_type=observation.error_type)
                    output_ref = await self.store_output(observation)
                    await self.perform(
                        decider.tool_finished(self.state, self.turn(), decision, observation, output_ref)
                    )
            finally:
                _EXECUTING.discard(key)
        elif isinstance(decision, FetchBlobs):
            self.blobs.update(await self.fetch_blobs(decision.refs))
        elif isinstance(decision, Recall):
            items = await self.recall(decision)
            self.stage_all(decider.recalled(self.state, self.turn(), decision, items).events)

    def _chat_span(self, ask: AskModel) -> contextlib.AbstractContextManager[tracing.Span]:
        return tracing.chat_span(
            ask.model.name,
            provider=tracing.provider_of(ask.model),
            run_id=self.state.run_id,
            agent=ask.agent,
            stage=ask.stage,
            step=ask.step,
        )

    def _tool_span(self, run: RunTool) -> contextlib.AbstractContextManager[tracing.Span]:
        return tracing.tool_span(
            run.tool.name,
            run.call_id,
            run_id=self.state.run_id,
            description=run.tool.description,
            attributes=tracing.call_attributes(self.state, run.call_id),
        )

    async def _cancelled_by_caller(self) -> None:
        """Record the cancellation (with whatever was staged before it) unless the run had finished."""
        if self.state.finished:
            return
        self.stage(Draft(ev.RunCancelled(reason="the calling task was cancelled"), "orchestrator", None, uuid7()))
        with contextlib.suppress(Superseded, JournalError):
            await self.flush()

    async def _failed(self, error: Exception) -> None:
        """An exception the runtime did not expect ends the run, with its type and message, not a bare `running`."""
        if self.state.finished:
            raise error
        if isinstance(error, RunStopped):  # a deliberate stop: what was staged before it stands
            stopped = ev.RunAborted(reason=str(error), error_type=type(error).__name__)
            self.stage(Draft(stopped, "orchestrator", self.state.last_event_id, uuid7()))
            await self.flush()
            return
        logger.exception("run %s: the runtime failed; the run is aborted with the reason", self.state.run_id)
        self.buffer.clear()  # what was staged may be what failed; the run's record stays as last written
        state = await self.runtime.aload(self.state.run_id)
        self.state, self.stored_version = state, state.version
        if state.finished:
            return
        reason = f"the runtime failed: {type(error).__name__}: {error}"
        aborted = ev.RunAborted(reason=reason, error_type=type(error).__name__)
        self.stage(Draft(aborted, "orchestrator", state.last_event_id, uuid7()))
        await self.flush()

    # ----- writing -------------------------------------------------------------------------------

    def stage_all(self, drafts: tuple[Draft, ...]) -> None:
        for draft in drafts:
            self.stage(draft)

    def stage(self, draft: Draft) -> None:
        """Fold an event into the state now, exactly as the journal will store it, and queue it."""
        event = new_event(
            draft.payload,
            actor=draft.actor,
            tenant_id=self.tenant_id,
            correlation_id=self.correlation_id,
            causation_id=draft.caused_by,
            event_id=draft.event_id,
            traceparent=self._traced(draft) if self.tracing else None,
        )
        self.buffer.append(self.state.apply_unwritten(event, self.redact))

    def _traced(self, draft: Draft) -> str | None:
        """The traceparent an event is stamped with: the span staging it (RunStarted starts the run's span)."""
        if isinstance(draft.payload, ev.RunStarted) and self.span is None:
            self.span = self._run_span(parent=None, started=draft.payload)
            return tracing.traceparent_of(self.span)
        tracing.note(draft.payload, event_id=draft.event_id)
        return current_traceparent()

    async def flush(self) -> None:
        """Write every staged event in one batch at the version this driver last saw."""
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        try:
            result = await self.append(batch, self.stored_version)
        except (ConcurrencyError, StreamClosedError):
            if self.span is not None and self.stored_version == 0:  # the run exists: this one never started
                tracing.abandon(self.span, "the run already exists")
            raise Superseded from None
        self.stored_version = result

    async def append(self, batch: list[NewEvent], expected_version: int) -> int:
        result = await self.journal.append(self.state.stream_id, batch, expected_version)
        return result.last_version

    # ----- effects (the replay driver answers these from the recording) ------------------------

    async def call_model(self, ask: AskModel) -> tuple[ModelResponse, float]:
        """One model request, retried on time-outs and connection errors; any other failure is a ModelError."""
        options = self.options
        last_error: Exception | None = None
        for attempt in range(1, options.max_attempts + 1):
            started = time.perf_counter()
            try:
                async with asyncio.timeout(options.model_timeout_s):  # no extra task, unlike wait_for
                    response = await ask.model.request(ask.request)
                return response, round((time.perf_counter() - started) * 1000, 3)
            except TimeoutError:
                last_error = ModelError(f"no reply within {options.model_timeout_s:g} s")
            except ModelError:
                raise
            except (ConnectionError, OSError) as exc:
                last_error = exc
            except Exception as exc:  # an adapter's bug or an SDK surprise: the run records it
                raise ModelError(f"{ask.model.name}: {type(exc).__name__}: {exc}") from exc
            if attempt < options.max_attempts:
                await asyncio.sleep(options.backoff(attempt))
        raise ModelError(f"{ask.model.name}: {last_error} (after {options.max_attempts} attempts)")

    async def run_tool(self, run: RunTool) -> Observation:
        context = RunContext(
            run_id=self.state.run_id,
            call_id=run.call_id,
            agent=run.agent,
            tenant_id=self.state.tenant_id,
            user_id=self.state.user_id,
            idempotency_key=run.idempotency_key,
        )
        return await execute(
            run.tool, run.arguments, idempotency_key=run.idempotency_key, calls_so_far=run.calls_so_far, run=context
        )

    async def store_output(self, observation: Observation) -> str | None:
        """A large output is stored once by content hash; the event refers to it."""
        if not observation.ok:
            return None
        encoded = canonical_json(observation.output)
        if len(encoded) <= self.options.blob_threshold_bytes:
            return None
        ref = BlobStore.ref_of(encoded)
        self.blobs[ref] = observation.output
        return await asyncio.to_thread(self.runtime.blobs.put, observation.output, encoded)

    async def fetch_blobs(self, refs: tuple[str, ...]) -> dict[str, Any]:
        return {ref: await asyncio.to_thread(self.runtime.blobs.get, ref) for ref in refs}

    async def recall(self, recall: Recall) -> list[dict[str, Any]]:
        memory = self.runtime.agent(recall.agent).memory
        if memory is None:
            return []
        tenant = recall.tenant_id or "default"
        items = await asyncio.to_thread(memory.recall, tenant, recall.user_id, recall.query, k=recall.k)
        return [{"item_id": item.item_id, "text": item.text, "score": item.score} for item in items]

    async def waiting(self, wait: Wait) -> bool:
        """The run must wait (a human, another worker's claim): True to go on instead (replay does)."""
        return False


def resumed_options(options: RunOptions, limits: dict[str, Any]) -> RunOptions:
    """The options a resumed run continues with: the limits it was started with win."""
    return replace(
        options,
        max_steps=limits.get("max_steps", options.max_steps),
        budget_usd=limits.get("budget_usd"),
        budget_tokens=limits.get("budget_tokens"),
        max_attempts=limits.get("max_attempts", options.max_attempts),
    )
