"""OpenTelemetry spans for runs, model calls and tool calls, in the GenAI semantic conventions.

Off unless a tracer provider is configured: with OpenTelemetry's default provider (the proxy, or
the no-op one) `enabled()` is False and the runtime, the recorder and the projection runner
create no span, parse no traceparent and stamp nothing; they check once per run or per batch.

With a provider, a run is traced as

    invoke_agent {agent}     INTERNAL   one per drive of a run: its start, and each resume
      chat {model}           CLIENT     one per model request (all its retries)
      execute_tool {tool}    INTERNAL   one per tool execution (its claim, the call, the result)

with `gen_ai.*` attributes, policy decisions, approvals, claims and handoffs as span events
(`agentjournal.policy.decision`, ...) and the decision that let a tool run as `agentjournal.*`
attributes of its span. Every event is stamped with the traceparent of the span that wrote it,
so the journal carries the trace across the async boundary: a run resumed in another process
continues from its RunStarted's traceparent (`continue_from`), and a projection applying a batch
continues the traces of the events it applies (`projection_batch`). Content (messages,
arguments, outputs) is never put on a span: the journal holds it, redacted as configured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import Token
from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from agentjournal.journal.context import current_context
from agentjournal.runs import events as ev

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.util.types import AttributeValue

    from agentjournal.journal import Journal, NewEvent, RecordedEvent
    from agentjournal.runs.state import RunState

__all__ = [
    "NO_SPAN",
    "RecordingSpans",
    "Span",
    "abandon",
    "activate",
    "call_attributes",
    "chat_span",
    "continue_from",
    "decided_approvals",
    "enabled",
    "event_span",
    "finish_run",
    "model_failed",
    "model_replied",
    "note",
    "projection_batch",
    "provider_for_model",
    "provider_of",
    "recording_spans",
    "run_span",
    "span_context_of",
    "start_run_span",
    "tool_finished",
    "tool_span",
    "traceparent_of",
    "tracer",
]

TRACER_NAME: Final = "agentjournal"
NO_SPAN: Final[AbstractContextManager[None]] = nullcontext()
"""What a caller enters instead of a span when tracing is off (reusable: nullcontext keeps no state)."""
MAX_TRACES_PER_BATCH: Final = 32
"""A projection batch continues (and links) at most this many of the traces its events carry."""

_OFF: Final = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_TERMINAL: Final = (ev.RunCompleted, ev.RunAborted, ev.RunCancelled)

# The GenAI semantic conventions' names (opentelemetry-semantic-conventions keeps them incubating).
OPERATION: Final = "gen_ai.operation.name"
PROVIDER: Final = "gen_ai.provider.name"
AGENT_NAME: Final = "gen_ai.agent.name"
AGENT_VERSION: Final = "gen_ai.agent.version"
CONVERSATION: Final = "gen_ai.conversation.id"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_TYPE: Final = "gen_ai.tool.type"
TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
ERROR_TYPE: Final = "error.type"


# ----- on or off ---------------------------------------------------------------------------


def enabled() -> bool:
    """True when a real tracer provider is configured (OpenTelemetry's default proxy means off)."""
    return not isinstance(trace.get_tracer_provider(), _OFF)


def tracer() -> trace.Tracer:
    """agentjournal's tracer from the global provider (one per provider, made once)."""
    return _tracer_of(trace.get_tracer_provider())


@cache
def _tracer_of(provider: trace.TracerProvider) -> trace.Tracer:
    return provider.get_tracer(TRACER_NAME, _version())


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentjournal")
    except PackageNotFoundError:
        return "0"


# ----- traceparents ------------------------------------------------------------------------


def traceparent_of(span: Span | None) -> str | None:
    """The W3C traceparent naming `span` (None for a span that is not valid, e.g. a no-op one)."""
    if span is None:
        return None
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def span_context_of(traceparent: str | None) -> SpanContext | None:
    """The span an event's W3C traceparent names, as a remote span context; None when it names none."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" or (parts[0] == "00" and len(parts) != 4):
        return None
    version, trace_hex, span_hex, flags_hex = parts[:4]
    if len(trace_hex) != 32 or len(span_hex) != 16 or len(flags_hex) != 2:
        return None
    try:
        int(version, 16)
        trace_id, span_id, flags = int(trace_hex, 16), int(span_hex, 16), int(flags_hex, 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))


def continue_from(traceparent: str | None, context: Context | None = None) -> Context | None:
    """A context in which a new span is a child of the span `traceparent` names (an event's), so the
    trace goes on in this process; `context` unchanged (None: the current one) when it names none."""
    parent = span_context_of(traceparent)
    if parent is None:
        return context
    return trace.set_span_in_context(NonRecordingSpan(parent), context)


def _ambient_link(parent: SpanContext | None) -> list[Link]:
    """A link to the current span, when a span continues another trace: the caller's trace finds it too."""
    current = trace.get_current_span().get_span_context()
    if parent is None or not current.is_valid or current.trace_id == parent.trace_id:
        return []
    return [Link(current, {"agentjournal.link": "caller"})]


# ----- runs --------------------------------------------------------------------------------


def provider_of(model: object) -> str:
    """`gen_ai.provider.name` for a model object: its `provider` attribute, else its module's provider."""
    named = getattr(model, "provider", None)
    if isinstance(named, str) and named:
        return named
    module = type(model).__module__
    for provider in ("openai", "anthropic"):
        if module.endswith(f".{provider}") or module.startswith(provider):
            return provider
    return provider_for_model(str(getattr(model, "name", "")))


def provider_for_model(model: str) -> str:
    """The provider a model name belongs to, for the usual families; `_OTHER` (the semconv's word) else."""
    name = model.lower()
    for prefixes, provider in _FAMILIES:
        if name.startswith(prefixes):
            return provider
    return "_OTHER"


_FAMILIES: Final = (
    (("claude",), "anthropic"),
    (("gpt-", "gpt4", "o1", "o3", "o4", "chatgpt", "text-embedding", "davinci"), "openai"),
    (("gemini",), "gcp.gemini"),
    (("mistral", "mixtral", "codestral"), "mistral_ai"),
    (("command",), "cohere"),
    (("deepseek",), "deepseek"),
    (("grok",), "x_ai"),
)


def start_run_span(
    run_id: str,
    agent: str,
    *,
    model: str = "",
    provider: str | None = None,
    agent_version: str | None = None,
    parent: str | None = None,
    resumed: bool = False,
) -> Span:
    """Start (not enter) the span of one drive of a run; `parent`: the traceparent it continues (a resumed
    run's RunStarted), else the current span is its parent, else the traceparent of the journal's context
    (`journal.context(traceparent=...)`, a request's trace handed on without OpenTelemetry)."""
    if parent is None and not trace.get_current_span().get_span_context().is_valid:
        parent = current_context().traceparent
    parent_context = span_context_of(parent)
    attributes: dict[str, AttributeValue] = {
        OPERATION: "invoke_agent",
        PROVIDER: provider or provider_for_model(model),
        AGENT_NAME: agent,
        CONVERSATION: run_id,
        "agentjournal.run.id": run_id,
        "agentjournal.run.resumed": resumed,
    }
    if model:
        attributes[REQUEST_MODEL] = model
    if agent_version:
        attributes[AGENT_VERSION] = agent_version
    return tracer().start_span(
        f"invoke_agent {agent}" if agent else "invoke_agent",
        context=continue_from(parent),
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        links=_ambient_link(parent_context),
    )


def activate(span: Span) -> AbstractContextManager[Span]:
    """`span` current inside the block, ended when the block ends (an exception marks it failed)."""
    return trace.use_span(span, end_on_exit=True)


def abandon(span: Span, reason: str) -> None:
    """End a started span whose work never began (the run it was for already exists)."""
    span.set_status(Status(StatusCode.ERROR, reason))
    span.end()


@contextmanager
def run_span(run_id: str, agent: str, **options: Any) -> Iterator[Span]:
    """`start_run_span`, current inside the block and ended when it ends."""
    span = start_run_span(run_id, agent, **options)
    with trace.use_span(span, end_on_exit=True):
        yield span


def finish_run(
    span: Span, state: RunState, *, waiting: str | None = None, tokens_before: tuple[int, int] = (0, 0)
) -> None:
    """What one drive of a run came to: its status, why it stopped, the tokens it spent."""
    metrics = state.metrics
    span.set_attributes(
        {
            "agentjournal.run.status": state.status,
            "agentjournal.run.step": state.step,
            INPUT_TOKENS: metrics.input_tokens - tokens_before[0],
            OUTPUT_TOKENS: metrics.output_tokens - tokens_before[1],
        }
    )
    if waiting:
        span.set_attribute("agentjournal.run.waiting", waiting)
    if state.status == "aborted":
        span.set_attribute(ERROR_TYPE, "run_aborted")
        span.set_status(Status(StatusCode.ERROR, state.reason or "aborted"))


def decided_approvals(span: Span, state: RunState) -> None:
    """On a resume: the human decisions this drive acts on (decided, their call not yet finished)."""
    for approval in state.approvals.values():
        call = state.calls.get(approval.call_id)
        if approval.status in ("approved", "rejected") and call is not None and not call.observed:
            span.add_event(
                "agentjournal.approval.decided",
                _present(
                    {
                        "agentjournal.approval.id": approval.approval_id,
                        "agentjournal.approval.status": approval.status,
                        "agentjournal.approval.by": approval.by,
                        "agentjournal.approval.reason": approval.reason,
                        "agentjournal.event.id": approval.decision_id,
                        TOOL_NAME: approval.tool,
                        TOOL_CALL_ID: approval.call_id,
                    }
                ),
            )


# ----- model and tool calls ----------------------------------------------------------------


@contextmanager
def chat_span(
    model: str,
    *,
    provider: str | None = None,
    run_id: str | None = None,
    agent: str | None = None,
    stage: str | None = None,
    step: int | None = None,
    context: Context | None = None,
    start_time: int | None = None,
) -> Iterator[Span]:
    """The span of one model request, current inside the block (an exception marks it failed)."""
    attributes = _present(
        {
            OPERATION: "chat",
            PROVIDER: provider or provider_for_model(model),
            REQUEST_MODEL: model,
            AGENT_NAME: agent,
            CONVERSATION: run_id,
            "agentjournal.run.id": run_id,
            "agentjournal.model.stage": stage,
            "agentjournal.run.step": step,
        }
    )
    span = tracer().start_span(
        f"chat {model}", context=context, kind=SpanKind.CLIENT, attributes=attributes, start_time=start_time
    )
    with trace.use_span(span, end_on_exit=True):
        yield span


def model_replied(
    span: Span | None, *, model: str | None, input_tokens: int, output_tokens: int, response_id: str | None = None
) -> None:
    """The reply's model and usage on a chat span (a no-op without one)."""
    if span is None:
        return
    span.set_attributes(
        _present({RESPONSE_MODEL: model or None, INPUT_TOKENS: input_tokens, OUTPUT_TOKENS: output_tokens})
    )
    if response_id:
        span.set_attribute("gen_ai.response.id", response_id)


def model_failed(span: Span | None, error: BaseException | str, error_type: str | None = None) -> None:
    """A model request that failed (the run records it and goes on, so no exception reaches the span)."""
    if span is None:
        return
    kind = error_type or (type(error).__name__ if isinstance(error, BaseException) else "_OTHER")
    span.set_attribute(ERROR_TYPE, kind)
    span.set_status(Status(StatusCode.ERROR, str(error)))


@contextmanager
def tool_span(
    tool: str,
    call_id: str,
    *,
    run_id: str | None = None,
    description: str | None = None,
    attributes: Mapping[str, AttributeValue | None] | None = None,
    context: Context | None = None,
    start_time: int | None = None,
) -> Iterator[Span]:
    """The span of one tool execution, current inside the block."""
    span = tracer().start_span(
        f"execute_tool {tool}",
        context=context,
        kind=SpanKind.INTERNAL,
        attributes=_tool_attributes(tool, call_id, run_id, description, attributes),
        start_time=start_time,
    )
    with trace.use_span(span, end_on_exit=True):
        yield span


def _tool_attributes(
    tool: str,
    call_id: str,
    run_id: str | None,
    description: str | None,
    extra: Mapping[str, AttributeValue | None] | None,
) -> dict[str, AttributeValue]:
    return _present(
        {
            OPERATION: "execute_tool",
            TOOL_NAME: tool,
            TOOL_CALL_ID: call_id,
            TOOL_TYPE: "function",
            TOOL_DESCRIPTION: description or None,
            CONVERSATION: run_id,
            "agentjournal.run.id": run_id,
            **(extra or {}),
        }
    )


def tool_finished(span: Span | None, *, ok: bool, error_type: str | None = None, error: str | None = None) -> None:
    """How a tool call ended, on its span (a no-op without one)."""
    if span is None or ok:
        return
    span.set_attribute(ERROR_TYPE, error_type or "_OTHER")
    span.set_status(Status(StatusCode.ERROR, error or error_type or "the tool failed"))


def call_attributes(state: RunState, call_id: str) -> dict[str, AttributeValue | None]:
    """What let a call run: the policy's decision and rule, and the human who approved it."""
    call = state.calls.get(call_id)
    if call is None:
        return {}
    attributes: dict[str, AttributeValue | None] = {
        "agentjournal.policy.action": call.decision,
        "agentjournal.policy.rule": call.rule,
        "agentjournal.tool.attempt": call.attempts + 1,
    }
    approval = state.approvals.get(call.approval_id) if call.approval_id else None
    if approval is not None:
        attributes["agentjournal.approval.id"] = approval.approval_id
        attributes["agentjournal.approval.status"] = approval.status
        attributes["agentjournal.approval.by"] = approval.by
    return attributes


# ----- decisions as span events ------------------------------------------------------------


def note(payload: ev.RunEvent, *, event_id: str | None = None, span: Span | None = None) -> None:
    """A policy decision, an approval, a claim, a handoff, a guardrail or a budget as an event of `span`
    (the current span by default); other events are not noted."""
    describe = _NOTES.get(type(payload))
    if describe is None:
        return
    name, attributes = describe(payload)
    if event_id:
        attributes["agentjournal.event.id"] = event_id
    (span or trace.get_current_span()).add_event(name, _present(attributes))


def _policy(p: Any) -> tuple[str, dict[str, Any]]:
    return "agentjournal.policy.decision", {
        TOOL_NAME: p.tool,
        TOOL_CALL_ID: p.call_id,
        "agentjournal.policy.action": p.action,
        "agentjournal.policy.rule": p.rule,
        "agentjournal.policy.reason": p.reason,
    }


def _requested(p: Any) -> tuple[str, dict[str, Any]]:
    return "agentjournal.approval.requested", {
        TOOL_NAME: p.tool,
        TOOL_CALL_ID: p.call_id,
        "agentjournal.approval.id": p.approval_id,
        "agentjournal.approval.expires_at": p.expires_at,
    }


def _decided(status: str) -> Callable[[Any], tuple[str, dict[str, Any]]]:
    def describe(p: Any) -> tuple[str, dict[str, Any]]:
        return "agentjournal.approval.decided", {
            TOOL_NAME: p.tool,
            "agentjournal.approval.id": p.approval_id,
            "agentjournal.approval.status": status,
            "agentjournal.approval.by": p.by,
            "agentjournal.approval.reason": p.reason,
        }

    return describe


def _claimed(p: Any) -> tuple[str, dict[str, Any]]:
    return "agentjournal.tool.claimed", {
        TOOL_NAME: p.tool,
        TOOL_CALL_ID: p.call_id,
        "agentjournal.tool.attempt": p.attempt,
        "agentjournal.claim.worker": p.worker,
        "agentjournal.claim.reclaimed_from": p.reclaimed_from,
    }


def _handoff(p: Any) -> tuple[str, dict[str, Any]]:
    return "agentjournal.handoff", {
        "agentjournal.handoff.from": p.from_agent,
        "agentjournal.handoff.to": p.to_agent,
        "agentjournal.handoff.reason": p.reason,
    }


def _guardrail(p: Any) -> tuple[str, dict[str, Any]]:
    return "agentjournal.guardrail", {
        "agentjournal.guardrail.check": p.check,
        "agentjournal.guardrail.outcome": p.outcome,
        "agentjournal.guardrail.reason": p.reason,
    }


def _budget(p: Any) -> tuple[str, dict[str, Any]]:
    return "agentjournal.budget_exceeded", {
        "agentjournal.budget.kind": p.kind,
        "agentjournal.budget.limit": p.limit,
        "agentjournal.budget.spent": p.spent,
    }


def _plan_rejected(p: Any) -> tuple[str, dict[str, Any]]:
    return "agentjournal.plan.rejected", {"agentjournal.plan.errors": len(p.errors)}


_NOTES: Final[dict[type[ev.RunEvent], Callable[[Any], tuple[str, dict[str, Any]]]]] = {
    ev.PolicyEvaluated: _policy,
    ev.ApprovalRequested: _requested,
    ev.ToolApproved: _decided("approved"),
    ev.ToolRejected: _decided("rejected"),
    ev.ToolClaimed: _claimed,
    ev.HandoffInitiated: _handoff,
    ev.GuardrailTriggered: _guardrail,
    ev.BudgetExceeded: _budget,
    ev.PlanRejected: _plan_rejected,
}


def _present(attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """OpenTelemetry refuses None values: leave those attributes out."""
    return {key: value for key, value in attributes.items() if value is not None}


# ----- the recorder ------------------------------------------------------------------------


class _Recorded(Protocol):
    """What RecordingSpans reads of a recorded run (integrations.recorder.RecordedRun)."""

    journal: Journal
    state: RunState


class RecordingSpans:
    """The spans of a run told to a recorder: the run's span from its RunStarted (or, resumed, continuing
    its RunStarted's traceparent), a chat span per recorded model call and an execute_tool span per tool
    result, timed back from the latency they report; decisions as events of the run's span."""

    def __init__(self, run: _Recorded) -> None:
        self.run = run
        self.span: Span | None = None
        self._tokens = (0, 0)
        self._token: Token[Context] | None = None

    def stamped(self, payload: ev.RunEvent, event: NewEvent) -> NewEvent:
        """Before an append: `event` stamped with the traceparent of its span (a recorded model call's or
        tool result's, timed back from its latency; else the run's), its decision noted on the run's span."""
        run = self._run_span(payload if isinstance(payload, ev.RunStarted) else None)
        own = self._own_span(payload, run, time.time_ns())
        note(payload, event_id=event.event_id, span=run)
        if event.traceparent:
            return event
        return replace(event, traceparent=traceparent_of(own or run))

    def recorded(self, payload: ev.RunEvent) -> None:
        """After an append: the run's last event ends the run's span."""
        if isinstance(payload, _TERMINAL):
            self.close()

    def enter(self) -> None:
        """Inside `with run:` the run's span is current: the loop's own spans nest under it."""
        if self._token is None and not self.run.state.finished:
            self._token = otel_context.attach(trace.set_span_in_context(self._run_span()))

    def exit(self, error: BaseException | None = None) -> None:
        """The `with run:` block ended: this process's part of the run is over, so its span ends."""
        if self._token is not None:
            otel_context.detach(self._token)
            self._token = None
        if error is not None and self.span is not None:
            self.span.record_exception(error)
            self.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        self.close()

    def close(self) -> None:
        if self.span is not None:
            finish_run(self.span, self.run.state, tokens_before=self._tokens)
            self.span.end()
            self.span = None

    def _run_span(self, started: ev.RunStarted | None = None) -> Span:
        if self.span is None:
            state = self.run.state
            metrics = state.metrics
            self._tokens = (metrics.input_tokens, metrics.output_tokens)
            if started is not None:
                self.span = start_run_span(
                    started.run_id, started.agent, model=started.model, agent_version=started.agent_version
                )
            else:  # a resumed run: its part in this process continues the trace its RunStarted carries
                first = self.run.journal.read_stream(state.stream_id, 1, 1)
                parent = first[0].traceparent if first else None
                self.span = start_run_span(
                    state.run_id,
                    state.agent,
                    model=state.model,
                    agent_version=state.agent_version,
                    parent=parent,
                    resumed=True,
                )
                decided_approvals(self.span, state)
        return self.span

    def _own_span(self, payload: ev.RunEvent, run: Span, now: int) -> Span | None:
        """The span of a recorded model call or tool result: it ended now, and began `latency_ms` before."""
        state = self.run.state
        parent = trace.set_span_in_context(run)
        if isinstance(payload, ev.ModelCalled):
            attributes = {
                OPERATION: "chat",
                PROVIDER: provider_for_model(payload.model),
                REQUEST_MODEL: payload.model,
                RESPONSE_MODEL: payload.model,
                INPUT_TOKENS: payload.input_tokens,
                OUTPUT_TOKENS: payload.output_tokens,
                AGENT_NAME: payload.agent,
                CONVERSATION: state.run_id,
                "agentjournal.run.id": state.run_id,
                "agentjournal.model.stage": payload.stage,
                "agentjournal.run.step": payload.step,
            }
            span = tracer().start_span(
                f"chat {payload.model}",
                context=parent,
                kind=SpanKind.CLIENT,
                start_time=now - int(payload.latency_ms * 1e6),
                attributes=_present(attributes),
            )
            span.end(now)
            return span
        if isinstance(payload, (ev.ToolExecuted, ev.ToolFailed)):
            extra = call_attributes(state, payload.call_id)
            span = tracer().start_span(
                f"execute_tool {payload.tool}",
                context=parent,
                kind=SpanKind.INTERNAL,
                start_time=now - int(payload.latency_ms * 1e6),
                attributes=_tool_attributes(payload.tool, payload.call_id, state.run_id, None, extra),
            )
            if isinstance(payload, ev.ToolFailed):
                tool_finished(span, ok=False, error_type=payload.error_type, error=payload.error)
            span.end(now)
            return span
        return None


class _NoRecordingSpans(RecordingSpans):
    """Tracing is off: every hook does nothing."""

    def __init__(self) -> None:
        pass

    def stamped(self, payload: ev.RunEvent, event: NewEvent) -> NewEvent:
        return event

    def recorded(self, payload: ev.RunEvent) -> None:
        pass

    def enter(self) -> None:
        pass

    def exit(self, error: BaseException | None = None) -> None:
        pass


_NO_RECORDING_SPANS: Final = _NoRecordingSpans()


def recording_spans(run: _Recorded) -> RecordingSpans:
    """The recorder's hooks for one run: spans when tracing is on, hooks that do nothing when off."""
    return RecordingSpans(run) if enabled() else _NO_RECORDING_SPANS


# ----- workers and projections -------------------------------------------------------------


@contextmanager
def event_span(
    name: str, event: RecordedEvent, *, kind: SpanKind = SpanKind.CONSUMER, **attributes: Any
) -> Iterator[Span]:
    """A worker handling one event: a span continuing the trace the event carries, current in the block."""
    parent = span_context_of(event.traceparent)
    span = tracer().start_span(
        name,
        context=continue_from(event.traceparent),
        kind=kind,
        attributes=_present(
            {
                "agentjournal.event.id": event.event_id,
                "agentjournal.event.type": event.type,
                "agentjournal.event.stream": event.stream_id,
                "agentjournal.event.position": event.position,
                **attributes,
            }
        ),
        links=_ambient_link(parent),
    )
    with trace.use_span(span, end_on_exit=True):
        yield span


@contextmanager
def projection_batch(name: str, events: Sequence[RecordedEvent]) -> Iterator[Span]:
    """The span of one batch a projection applies, current in the block, in the traces of its events.

    A batch whose events carry one trace continues it. A batch of several traces gets its own span,
    linked to each of them, and each trace (up to MAX_TRACES_PER_BATCH) gets a span of the same time
    linked back to the batch, so every trace shows the projection that applied its events.
    """
    latest: dict[int, SpanContext] = {}
    counts: dict[int, int] = {}
    for event in events:
        parent = span_context_of(event.traceparent)
        if parent is not None:
            latest[parent.trace_id] = parent
            counts[parent.trace_id] = counts.get(parent.trace_id, 0) + 1
    traces = list(latest.values())
    attributes: dict[str, AttributeValue] = {
        "agentjournal.projection.name": name,
        "agentjournal.projection.events": len(events),
        "agentjournal.projection.traces": len(traces),
        "agentjournal.projection.first_position": events[0].position if events else 0,
        "agentjournal.projection.last_position": events[-1].position if events else 0,
    }
    span_name = f"projection {name}"
    single = traces[0] if len(traces) == 1 else None
    context = trace.set_span_in_context(NonRecordingSpan(single)) if single is not None else None
    links = _ambient_link(single) if single is not None else [Link(c) for c in traces[:MAX_TRACES_PER_BATCH]]
    start = time.time_ns()
    span = tracer().start_span(
        span_name, context=context, kind=SpanKind.CONSUMER, attributes=attributes, links=links, start_time=start
    )
    failure: BaseException | None = None
    try:
        with trace.use_span(span, end_on_exit=False):
            yield span
    except BaseException as exc:
        failure = exc
        raise
    finally:
        end = time.time_ns()
        span.end(end)
        if single is None:
            batch = Link(span.get_span_context(), {"agentjournal.link": "batch"})
            for parent in traces[:MAX_TRACES_PER_BATCH]:
                part = tracer().start_span(
                    span_name,
                    context=trace.set_span_in_context(NonRecordingSpan(parent)),
                    kind=SpanKind.CONSUMER,
                    attributes={**attributes, "agentjournal.projection.trace_events": counts[parent.trace_id]},
                    links=[batch],
                    start_time=start,
                )
                if failure is not None:
                    part.set_status(Status(StatusCode.ERROR, str(failure)))
                part.end(end)
