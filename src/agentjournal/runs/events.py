"""The events of an agent run: the run contract every writer and reader shares.

A run lives on the stream `run-<run_id>` and begins with RunStarted carrying
`contract_version`. Field names are the contract: the runtime and every integration write
them; RunState, the read models, the policy's run metrics, the forensics and the evaluator
read them. docs/run-contract.md documents each event and field.

Versions: `CONTRACT_VERSION` is the contract as a whole (on RunStarted); each event type also
has a schema version, and `upcast` turns an event stored at an older schema into the current
one (old events are never rewritten). `CONTRACT` is an EventRegistry holding the models and
their upcasters; attach them to a journal with `register_run_events(journal.registry)`.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentjournal.journal import EventRegistry, NewEvent, RecordedEvent

CONTRACT_VERSION: Final = 2
"""2: ToolClaimed, MemoryRecalled, OutputChecked/GuardrailTriggered, stages on ModelCalled,
closing terminal events. 1: the runtime's first format (no `contract_version` on RunStarted)."""

RUN_PREFIX: Final = "run-"
BLOB_PREFIX: Final = "blob-"


def run_stream(run_id: str) -> str:
    """`run-<id>` for a run id (an id that already has the prefix is kept as it is)."""
    return run_id if run_id.startswith(RUN_PREFIX) else RUN_PREFIX + run_id


def run_id_of(stream_id: str) -> str:
    return stream_id.removeprefix(RUN_PREFIX)


class RunEvent(BaseModel):
    """Base of every contract event: unknown fields are kept (a newer writer may add some)."""

    model_config = ConfigDict(extra="allow")


Stage = Literal["plan", "act", "respond"]
"""Seed 001's stages: a small model plans, the agent acts with tools, a strong model answers."""


class RunStarted(RunEvent):
    run_id: str
    agent: str
    agent_version: str
    model: str
    prompt_version: str
    """SHA-256 of the agent's system prompt."""
    tool_schemas: dict[str, str]
    """Tool name -> SHA-256 of its JSON schema."""
    input: str
    policy_version: str | None = None
    route: str | None = None
    user_id: str | None = None
    limits: dict[str, Any] = Field(default_factory=dict)
    planner_model: str | None = None
    """The model of the plan stage when it differs from `model`."""
    contract_version: int = CONTRACT_VERSION


class MemoryRecalled(RunEvent):
    """What the agent was told from the user's memory before its first model call."""

    query: str
    items: list[dict[str, Any]]
    """Each {item_id, text, score}: the texts as recalled, so replay and audit see the same context."""


class PlanGenerated(RunEvent):
    plan: dict[str, Any]
    """Seed 001's plan: {runId, maxSteps, budgetUsd, steps: [{id, objective, tool, input, successCriteria}], ...}."""


class PlanRejected(RunEvent):
    errors: list[dict[str, Any]]
    fallback: str


class ModelCalled(RunEvent):
    model: str
    stage: Stage
    request_fingerprint: str
    new_messages: list[dict[str, Any]]
    """Messages added since the previous call, as `{"role", "ref": version}` of the event that holds each."""
    response: dict[str, Any]
    """{"text": str | None, "tool_calls": [{"id", "name", "arguments"}]}."""
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    step: int
    agent: str
    prompt_hash: str | None = None
    """SHA-256 of the instructions as sent (the plan stage adds its contract to the prompt)."""
    tools_hash: str | None = None
    """SHA-256 of the tool descriptions as sent."""


class ToolProposed(RunEvent):
    tool: str
    arguments: dict[str, Any]
    step: int
    call_id: str
    agent: str


Action = Literal["allow", "deny", "require_human_approval"]


class PolicyEvaluated(RunEvent):
    tool: str
    rule: str | None
    action: Action
    reason: str
    call_id: str


class ApprovalRequested(RunEvent):
    approval_id: str
    tool: str
    arguments: dict[str, Any]
    arguments_hash: str
    expires_at: str | None
    call_id: str


class ToolApproved(RunEvent):
    approval_id: str
    by: str
    reason: str
    tool: str
    arguments_hash: str


class ToolRejected(RunEvent):
    approval_id: str
    by: str
    reason: str
    tool: str


class ToolClaimed(RunEvent):
    """A worker takes a side-effecting (or approved) call before it acts: appended at the version it saw.

    A worker that loses this append never executes the call. `expires_at` bounds the claim: a
    claim that outlives it without a result belongs to a worker that crashed, and another may
    claim the call again (`reclaimed_from`), executing it with the same idempotency key.
    """

    call_id: str
    tool: str
    attempt: int
    worker: str
    expires_at: str
    idempotency_key: str
    reclaimed_from: str | None = None


class ToolExecuted(RunEvent):
    tool: str
    latency_ms: float
    attempt: int
    call_id: str
    output: Any = None
    output_ref: str | None = None
    """`blob-<sha256>` when the output was large and stored once by content hash."""
    cost_usd: float = 0.0


class ToolFailed(RunEvent):
    tool: str
    error_type: str
    error: str
    attempt: int
    will_retry: bool
    call_id: str
    latency_ms: float = 0.0


class ObservationCaptured(RunEvent):
    """What the model is told about a call: its output (by reference to ToolExecuted) or why it has none."""

    tool: str
    call_id: str
    ok: bool
    error_type: str | None = None
    error: str | None = None


class HandoffInitiated(RunEvent):
    from_agent: str
    to_agent: str
    reason: str
    call_id: str
    agent_version: str | None = None
    prompt_version: str | None = None
    tool_schemas: dict[str, str] | None = None
    """What the receiving agent ran with (as RunStarted pins it for the first agent)."""


class ResponseDrafted(RunEvent):
    text: str
    agent: str


CheckOutcome = Literal["passed", "rewritten", "blocked"]


class OutputChecked(RunEvent):
    """An output check passed the draft unchanged."""

    check: str
    outcome: CheckOutcome = "passed"
    reason: str = ""


class GuardrailTriggered(RunEvent):
    """An output check changed the draft (`rewritten`) or stopped it (`blocked`): seed 002's GUARDRAIL_TRIGGERED."""

    check: str
    outcome: CheckOutcome
    reason: str
    findings: list[dict[str, Any]] = Field(default_factory=list)


class ResponseFinalized(RunEvent):
    text: str


class RunCompleted(RunEvent):
    outcome: Literal["answered", "fallback"] = "answered"


class RunAborted(RunEvent):
    reason: str
    error_type: str | None = None


class RunCancelled(RunEvent):
    reason: str
    by: str | None = None


class BudgetExceeded(RunEvent):
    kind: Literal["usd", "tokens"]
    limit: float
    spent: float


class BlobStored(RunEvent):
    """A large value stored once on `blob-<sha256>`; run events refer to it by that stream id."""

    sha256: str
    size: int
    content: Any


class MemoryStored(RunEvent):
    """An item on a user's memory stream, already redacted."""

    item_id: str
    user_id: str
    text: str
    tags: list[str] = Field(default_factory=list)
    long_term: bool = False
    created_at: str
    expires_at: str | None = None
    redactions: list[dict[str, Any]] = Field(default_factory=list)


class MemoryForgotten(RunEvent):
    item_id: str
    reason: str = ""


SCHEMA_VERSIONS: Final[dict[type[RunEvent], int]] = {
    RunStarted: 2,
    ModelCalled: 2,
}
"""Event types whose stored shape changed; every other type is at schema version 1."""

RUN_EVENTS: Final[tuple[type[RunEvent], ...]] = (
    RunStarted,
    MemoryRecalled,
    PlanGenerated,
    PlanRejected,
    ModelCalled,
    ToolProposed,
    PolicyEvaluated,
    ApprovalRequested,
    ToolApproved,
    ToolRejected,
    ToolClaimed,
    ToolExecuted,
    ToolFailed,
    ObservationCaptured,
    HandoffInitiated,
    ResponseDrafted,
    OutputChecked,
    GuardrailTriggered,
    ResponseFinalized,
    RunCompleted,
    RunAborted,
    RunCancelled,
    BudgetExceeded,
)
"""The events that appear on a run's stream."""

OTHER_EVENTS: Final[tuple[type[RunEvent], ...]] = (BlobStored, MemoryStored, MemoryForgotten)
"""Contract events on other streams: blobs and users' memory."""

TERMINAL: Final = frozenset({"RunCompleted", "RunAborted", "RunCancelled"})
"""A run's last event: it closes the stream, so the journal refuses anything after it."""


# ----- upcasters: contract version 1 -> 2 -------------------------------------------------------


def _run_started_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no contract version; a RunStarted that is not a runtime's is left as it is."""
    if "agent" in data and "tool_schemas" in data:
        data.setdefault("contract_version", 1)
    return data


def _model_called_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 named the stage `purpose` ("act" or "plan")."""
    if "stage" not in data:
        data["stage"] = data.pop("purpose", "act")
    return data


def contract_registry() -> EventRegistry:
    """A fresh registry with every contract event and its upcasters."""
    registry = EventRegistry()
    register_run_events(registry)
    return registry


def register_run_events(registry: EventRegistry) -> EventRegistry:
    """Register the contract's models and upcasters on `registry` (idempotent)."""
    for model in (*RUN_EVENTS, *OTHER_EVENTS):
        registry.register(model, schema_version=SCHEMA_VERSIONS.get(model, 1))
    for type_name, upcast in (("RunStarted", _run_started_v1), ("ModelCalled", _model_called_v1)):
        if not registry.has_upcaster(type_name, 1):
            registry.add_upcaster(type_name, 1, upcast)
    return registry


CONTRACT: Final = contract_registry()
"""The contract's own registry: readers upcast through it, whatever the journal's registry holds."""


def upcast(event: RecordedEvent) -> RecordedEvent:
    """The event in the contract's current schema (a no-op for current events and other types)."""
    return CONTRACT.upcast(event)


def new_event(
    payload: RunEvent,
    *,
    actor: str | None,
    tenant_id: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
    traceparent: str | None = None,
) -> NewEvent:
    """A contract event ready to append: its type, schema version, and the closing flag of terminal events."""
    kind = type(payload).__name__
    return NewEvent(
        kind,
        payload.model_dump(mode="json"),
        event_id=event_id,
        schema_version=SCHEMA_VERSIONS.get(type(payload), 1),
        actor=actor,
        tenant_id=tenant_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
        traceparent=traceparent,
        closes_stream=kind in TERMINAL,
    )


def is_run_start(event: RecordedEvent) -> bool:
    """True when `event` begins a run of this contract (any version): a RunStarted whose data fits it.

    A user's own `RunStarted` with other fields is not a run start, so it keeps the generic tools.
    """
    if event.type != "RunStarted" or event.version != 1:
        return False
    try:
        RunStarted.model_validate(upcast(event).data)
    except ValidationError:
        return False
    return True
