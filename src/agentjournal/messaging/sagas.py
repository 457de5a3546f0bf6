"""Durable sagas: named steps, each an action and its compensation, every transition an event.

A saga instance lives on the stream `saga-<id>`. Each transition (SagaStarted, StepStarted,
StepCompleted, StepFailed, CompensationStarted, StepCompensated, CompensationFailed,
RetryRequested, SagaCompleted, SagaCompensated) is appended at the version the runner folded, so
of two processes advancing one saga exactly one writes each transition. A step is started (its
StepStarted appended) before its action runs, and the process that loses that append never runs it.

When a step fails, the completed steps are compensated in reverse order. Resuming, in any process,
folds the stream and continues: a recorded result is never produced again, and a step started
without a recorded result runs again with the same idempotency key (the receiver drops the repeat)
once its worker is gone: its process is dead (on this host) or its claim has expired. A compensation
that fails leaves the saga `needs_repair` until `retry`, after a fix, runs it again and the rollback
continues. SagaCompleted and SagaCompensated close the stream: nothing is appended after them.

What this does not do: run a saga that nobody resumes (call `resume`, or `agentjournal sagas retry`
for a repair), nor undo the effect of a step whose action failed (only completed steps are
compensated; an action that may half-apply must clean up after itself before it raises).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from agentjournal.journal import (
    ConcurrencyError,
    Journal,
    JournalError,
    NewEvent,
    RecordedEvent,
    StreamClosedError,
)
from agentjournal.journal.envelope import MAX_STREAM_ID_LENGTH, check_identifier
from agentjournal.journal.ids import uuid7
from agentjournal.journal.location import redact
from agentjournal.model import Aggregate
from agentjournal.model.explainers import Explainers, Explanation, brief
from agentjournal.model.types import import_object

SAGA_PREFIX: Final = "saga-"
STEP_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DEFAULT_CLAIM_S: Final = 300.0
"""How long a started step counts as in progress when its worker is on another host (on this host,
the worker's process is checked instead)."""

Phase = Literal["action", "compensation"]
SagaStatus = Literal["new", "running", "compensating", "completed", "compensated", "needs_repair"]
StepStatus = Literal[
    "pending",  # not started
    "started",  # its action is running (or its worker died before recording a result)
    "completed",  # its action's result is recorded
    "failed",  # its action failed: the saga compensates the steps before it
    "compensating",  # its compensation is running (or its worker died before recording the outcome)
    "compensated",
    "compensation_failed",  # the saga needs repair
]
STATUSES: Final[tuple[SagaStatus, ...]] = ("running", "compensating", "completed", "compensated", "needs_repair")
UNFINISHED: Final = frozenset({"running", "compensating", "needs_repair"})


# ----- errors ------------------------------------------------------------------------------------


class SagaError(JournalError):
    """A saga that cannot be started, resumed or repaired as asked."""


class SagaDefinitionError(SagaError, ValueError):
    """A saga definition that is malformed, unknown, or does not match the saga it should run."""


class SagaNotFoundError(SagaError, LookupError):
    """No saga with this id in the journal."""


class SagaStateError(SagaError):
    """The saga is not in a state that allows the request (e.g. `retry` of a saga that needs no repair)."""


class StepError(SagaError):
    """Raise it from a step to fail it with an error type of your choosing (a policy's denial, say)."""

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        super().__init__(message)


# ----- definitions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepContext:
    """What an action or a compensation is given. `idempotency_key` is the same for every attempt of
    this step's action (or compensation), in any process, so the receiver can drop a repeat."""

    saga_id: str
    definition: str
    step: str
    phase: Phase
    attempt: int
    idempotency_key: str
    input: dict[str, Any]
    results: dict[str, Any]
    """The results of the steps before this one (for a compensation: this step's own too)."""
    journal: Journal
    resumed: bool = False
    """True when this attempt runs again an attempt whose worker stopped without recording an outcome."""

    @property
    def result(self) -> Any:
        """A compensation's step's own action result (None for an action)."""
        return self.results.get(self.step) if self.phase == "compensation" else None


StepFunction = Callable[[StepContext], Any]
"""An action or a compensation: returns a JSON value (or an awaitable of one); raising fails it."""


@dataclass(frozen=True)
class Step:
    """One step of a saga: its action, and the compensation that undoes it (None: nothing to undo)."""

    name: str
    action: StepFunction
    compensation: StepFunction | None = None
    claim_s: float = DEFAULT_CLAIM_S
    """How long another host waits for this step's worker before it runs the step again."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not STEP_NAME.fullmatch(self.name):
            raise SagaDefinitionError(
                f"step name {self.name!r} must be 1 to 64 letters, digits, '_', '.' or '-' "
                "(it is part of the idempotency key)"
            )
        if not callable(self.action):
            raise SagaDefinitionError(f"step {self.name!r}: the action must be callable, got {self.action!r}")
        if self.compensation is not None and not callable(self.compensation):
            raise SagaDefinitionError(
                f"step {self.name!r}: the compensation must be callable or None, got {self.compensation!r}"
            )
        if not isinstance(self.claim_s, int | float) or self.claim_s <= 0:
            raise SagaDefinitionError(f"step {self.name!r}: claim_s must be positive, got {self.claim_s!r}")

    def function(self, phase: Phase) -> StepFunction | None:
        return self.action if phase == "action" else self.compensation


class SagaDefinition:
    """A named sequence of steps. The name is recorded in SagaStarted, so a resume finds the definition."""

    def __init__(self, name: str, steps: Sequence[Step]) -> None:
        if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
            raise SagaDefinitionError(f"saga name {name!r} must be 1 to 64 letters, digits, '_', '.' or '-'")
        steps = tuple(steps)
        if not steps:
            raise SagaDefinitionError(f"saga {name!r} has no steps")
        wrong = [step for step in steps if not isinstance(step, Step)]
        if wrong:
            raise SagaDefinitionError(f"saga {name!r}: expected Step objects, got {wrong[0]!r}")
        seen: set[str] = set()
        for step in steps:
            if step.name in seen:
                raise SagaDefinitionError(
                    f"saga {name!r} has two steps named {step.name!r}; step names must be unique "
                    "(each step's name is part of its idempotency key)"
                )
            seen.add(step.name)
        self.name = name
        self.steps = steps
        self._by_name = {step.name: step for step in steps}

    def step(self, name: str) -> Step:
        return self._by_name[name]

    @property
    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]

    def __repr__(self) -> str:
        return f"SagaDefinition({self.name!r}, steps={self.step_names})"


def load_sagas(path: str) -> list[SagaDefinition]:
    """The definitions named by `package.module:attr`: a SagaDefinition, a list of them, or a function
    returning either (what `agentjournal sagas retry --sagas` takes)."""
    found: Any = import_object(path, "sagas")
    if callable(found) and not isinstance(found, SagaDefinition):
        try:
            found = found()
        except TypeError as exc:
            raise SagaDefinitionError(
                f"sagas {path!r} is a function that cannot be called without arguments: {exc}"
            ) from None
    items = [found] if isinstance(found, SagaDefinition) else list(found) if isinstance(found, list | tuple) else None
    if not items or not all(isinstance(item, SagaDefinition) for item in items):
        raise SagaDefinitionError(f"sagas {path!r} is {found!r}, not a SagaDefinition or a list of them")
    return items


def saga_stream(saga_id: str) -> str:
    """`saga-<id>` for a saga id (an id that already has the prefix is kept as it is)."""
    return saga_id if saga_id.startswith(SAGA_PREFIX) else SAGA_PREFIX + saga_id


def saga_id_of(stream_id: str) -> str:
    return stream_id.removeprefix(SAGA_PREFIX)


def idempotency_key(saga_id: str, step: str, phase: Phase) -> str:
    """`<saga id>:<step>:<action|compensation>`: the same for every attempt, in every process."""
    return f"{saga_id_of(saga_id)}:{step}:{phase}"


# ----- events ------------------------------------------------------------------------------------


class SagaEvent(BaseModel):
    """Base of the saga events: unknown fields are kept (a newer writer may add some)."""

    model_config = ConfigDict(extra="allow")


class SagaStarted(SagaEvent):
    saga_id: str
    definition: str
    input: dict[str, Any]
    steps: list[str]


class StepStarted(SagaEvent):
    """Appended at the version the worker folded, before the action runs: a worker that loses it never runs it."""

    step: str
    attempt: int
    idempotency_key: str
    worker: str
    expires_at: str
    resumed_from: str | None = None
    """The worker of the attempt this one runs again (it stopped without a result)."""


class StepCompleted(SagaEvent):
    step: str
    attempt: int
    result: Any = None


class StepFailed(SagaEvent):
    step: str
    attempt: int
    error_type: str
    error: str


class CompensationStarted(SagaEvent):
    step: str
    attempt: int
    idempotency_key: str
    worker: str
    expires_at: str
    resumed_from: str | None = None


class StepCompensated(SagaEvent):
    step: str
    attempt: int
    result: Any = None


class CompensationFailed(SagaEvent):
    """Seed 002's compensation_failed: the saga stays visible as needing manual repair."""

    step: str
    attempt: int
    error_type: str
    error: str


class RetryRequested(SagaEvent):
    """Someone fixed what made a compensation fail and asked for it to run again."""

    step: str
    by: str | None = None
    reason: str = ""


class SagaCompleted(SagaEvent):
    results: dict[str, Any]


class SagaCompensated(SagaEvent):
    """Rolled back cleanly: every completed step before the failed one was compensated."""

    failed_step: str | None
    error: str | None


SAGA_EVENTS: Final[tuple[type[SagaEvent], ...]] = (
    SagaStarted,
    StepStarted,
    StepCompleted,
    StepFailed,
    CompensationStarted,
    StepCompensated,
    CompensationFailed,
    RetryRequested,
    SagaCompleted,
    SagaCompensated,
)
TERMINAL: Final = frozenset({"SagaCompleted", "SagaCompensated"})


def saga_event(payload: SagaEvent, *, causation_id: str | None = None, correlation_id: str | None = None) -> NewEvent:
    kind = type(payload).__name__
    return NewEvent(
        kind,
        payload.model_dump(mode="json"),
        event_id=uuid7(),
        causation_id=causation_id,
        correlation_id=correlation_id,
        closes_stream=kind in TERMINAL,
    )


# ----- state -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepState:
    name: str
    status: StepStatus = "pending"
    result: Any = None
    compensation_result: Any = None
    error_type: str | None = None
    error: str | None = None
    attempts: int = 0
    compensation_attempts: int = 0
    worker: str | None = None
    """Who holds the step's current start (action or compensation)."""
    expires_at: str | None = None
    claim_id: str | None = None
    """The event id of that start."""
    resumed: int = 0
    """How many attempts ran again an attempt that stopped without an outcome."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_ACTED: Final = frozenset({"completed", "compensating", "compensated", "compensation_failed"})
"""Statuses of a step whose action's result is recorded."""
_SAGA_TYPES: Final = frozenset(model.__name__ for model in SAGA_EVENTS)
_OUTCOMES: Final[dict[str, tuple[StepStatus, str | None]]] = {
    "StepCompleted": ("completed", "result"),
    "StepFailed": ("failed", None),
    "StepCompensated": ("compensated", "compensation_result"),
    "CompensationFailed": ("compensation_failed", None),
}
"""An outcome event: the step's status after it, and where its result goes (None: it carries an error)."""
_STATUS_AFTER: Final[dict[str, SagaStatus]] = {
    "SagaStarted": "running",
    "StepFailed": "compensating",
    "CompensationFailed": "needs_repair",
    "RetryRequested": "compensating",
    "SagaCompleted": "completed",
    "SagaCompensated": "compensated",
}


class SagaState(Aggregate):
    """A saga folded from its stream: the status, and each step's status, result and error. No I/O."""

    snapshot_every: ClassVar[int | None] = None

    saga_id: str
    definition: str
    input: dict[str, Any]
    status: SagaStatus
    steps: dict[str, StepState]
    failed_step: str | None
    failure: str | None
    started_at: datetime | None
    updated_at: datetime | None
    correlation_id: str | None
    last_event_id: str | None

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.saga_id = saga_id_of(stream_id)
        self.definition = ""
        self.input = {}
        self.status = "new"
        self.steps = {}
        self.failed_step = None
        self.failure = None
        self.started_at = None
        self.updated_at = None
        self.correlation_id = None
        self.last_event_id = None

    def when(self, event: RecordedEvent) -> None:
        kind, d = event.type, event.data
        if kind not in _SAGA_TYPES or (self.status == "new" and kind != "SagaStarted"):
            return  # not a saga event, or a stream that is not a saga's
        if kind == "SagaStarted":
            self.definition, self.input = d["definition"], dict(d["input"])
            self.steps = {name: StepState(name) for name in d["steps"]}
            self.started_at, self.correlation_id = event.recorded_at, event.correlation_id
        elif kind in ("StepStarted", "CompensationStarted"):
            action = kind == "StepStarted"
            self._step(
                d["step"],
                status="started" if action else "compensating",
                **{"attempts" if action else "compensation_attempts": d["attempt"]},
                worker=d["worker"],
                expires_at=d["expires_at"],
                claim_id=event.event_id,
                resumed=self.steps[d["step"]].resumed + (d.get("resumed_from") is not None),
            )
        elif kind in _OUTCOMES:
            status, field = _OUTCOMES[kind]
            outcome = {field: d.get("result")} if field else {"error_type": d["error_type"], "error": d["error"]}
            self._step(d["step"], status=status, worker=None, expires_at=None, claim_id=None, **outcome)
            if kind == "StepFailed":
                self.failed_step, self.failure = d["step"], f"{d['error_type']}: {d['error']}"
        elif kind == "RetryRequested":
            self._step(d["step"], status="completed", error_type=None, error=None)  # to be compensated again
        self.status = _STATUS_AFTER.get(kind, self.status)
        self.updated_at = event.recorded_at
        self.last_event_id = event.event_id

    def _step(self, name: str, **changes: Any) -> None:
        self.steps[name] = replace(self.steps[name], **changes)

    @property
    def results(self) -> dict[str, Any]:
        """The recorded results of the steps whose action completed, in step order."""
        return {name: step.result for name, step in self.steps.items() if step.status in _ACTED}

    @property
    def current_step(self) -> str | None:
        """The step being worked on or next (for a rollback: being compensated or next to be); None when finished."""
        order = list(self.steps.values())
        if self.status == "running":
            return next((step.name for step in order if step.status in ("pending", "started")), None)
        if self.status == "needs_repair":
            return next((step.name for step in order if step.status == "compensation_failed"), None)
        if self.status == "compensating":
            return next((step.name for step in reversed(order) if step.status in ("compensating", "completed")), None)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "saga_id": self.saga_id,
            "stream_id": self.stream_id,
            "definition": self.definition,
            "status": self.status,
            "current_step": self.current_step,
            "input": self.input,
            "failed_step": self.failed_step,
            "failure": self.failure,
            "version": self.version,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "steps": [step.to_dict() for step in self.steps.values()],
        }


def load_saga(journal: Journal, saga_id: str) -> SagaState:
    """The saga as its events have it now; SagaNotFoundError when there is no such saga."""
    state = _fold(journal, saga_stream(check_identifier(saga_id, "saga id", MAX_STREAM_ID_LENGTH)))
    if state.status == "new":
        raise SagaNotFoundError(
            f"no saga {saga_id_of(saga_id)!r} in {redact(journal.url)}; `agentjournal sagas list` shows the sagas"
        )
    return state


def _fold(journal: Journal, stream_id: str) -> SagaState:
    state = SagaState(stream_id)
    for event in journal.read_stream(stream_id):
        state.apply(event)
    return state


def list_sagas(journal: Journal, *, status: str | None = None) -> list[SagaState]:
    """Every saga (with `status`: those in it; `unfinished`: running, compensating or needing repair),
    the most recently updated first."""
    if status is not None and status not in (*STATUSES, "unfinished"):
        raise SagaError(f"unknown saga status {status!r}; one of: {', '.join(STATUSES)}, unfinished")
    found: list[SagaState] = []
    after = ""
    while True:
        page = journal.streams(SAGA_PREFIX, after=after, limit=1000)
        for info in page:
            state = _fold(journal, info.stream_id)
            if state.status == "new":
                continue  # a stream of that name that is not a saga
            if status is None or state.status == status or (status == "unfinished" and state.status in UNFINISHED):
                found.append(state)
        if len(page) < 1000:
            break
        after = page[-1].stream_id
    return sorted(found, key=lambda state: state.updated_at or datetime.min.replace(tzinfo=UTC), reverse=True)


# ----- deciding the next transition (no I/O) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Begin:
    """Start a step's action or compensation (attempt `attempt`)."""

    step: str
    phase: Phase
    attempt: int
    resumed_from: str | None


@dataclass(frozen=True, slots=True)
class Busy:
    """Another worker, still alive, holds the step."""

    step: str
    phase: Phase
    worker: str | None
    until: str | None


@dataclass(frozen=True, slots=True)
class Finish:
    event: SagaEvent


@dataclass(frozen=True, slots=True)
class Stop:
    """Nothing to do: finished, or waiting for a repair."""


Move = Begin | Busy | Finish | Stop


def next_move(state: SagaState, definition: SagaDefinition, alive: Callable[[StepState], bool]) -> Move:
    """What the saga does next, decided from its state alone."""
    if state.status not in ("running", "compensating"):
        return Stop()
    steps = [state.steps[name] for name in definition.step_names]
    if state.status == "running":
        for step in steps:
            if step.status == "pending":
                return Begin(step.name, "action", 1, None)
            if step.status == "started":
                if alive(step):
                    return Busy(step.name, "action", step.worker, step.expires_at)
                return Begin(step.name, "action", step.attempts + 1, step.worker)
        return Finish(SagaCompleted(results=state.results))
    for step in reversed(steps):
        if step.status == "compensating":
            if alive(step):
                return Busy(step.name, "compensation", step.worker, step.expires_at)
            return Begin(step.name, "compensation", step.compensation_attempts + 1, step.worker)
        if step.status == "completed" and definition.step(step.name).compensation is not None:
            return Begin(step.name, "compensation", step.compensation_attempts + 1, None)
    return Finish(SagaCompensated(failed_step=state.failed_step, error=state.failure))


# ----- running -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SagaResult:
    """Where a saga stands after `start`, `resume` or `retry` returned."""

    state: SagaState
    waiting: str | None = None
    """Why it stopped unfinished though nothing failed: another worker is running one of its steps."""

    @property
    def saga_id(self) -> str:
        return self.state.saga_id

    @property
    def status(self) -> SagaStatus:
        return self.state.status

    @property
    def results(self) -> dict[str, Any]:
        return self.state.results

    @property
    def failed_step(self) -> str | None:
        return self.state.failed_step

    @property
    def error(self) -> str | None:
        """Why the saga is rolled back (or needs repair): the failed step's error, or the failed compensation's."""
        if self.state.status == "needs_repair":
            broken = self.state.steps[self.state.current_step or ""]
            return f"the compensation of {broken.name} failed: {broken.error_type}: {broken.error}"
        return self.state.failure


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar("agentjournal_saga_step", default=None)
_EXECUTING: set[str] = set()
"""The claim ids (StepStarted / CompensationStarted event ids) of the steps this process is running now."""


def current_step() -> StepContext | None:
    """The saga step executing in this context (None outside one): for code a step calls, such as a tool."""
    return _current.get()


class SagaRunner:
    """Starts, resumes and repairs sagas of the given definitions on one journal.

    It blocks while steps run; from async code call it in a thread (`await asyncio.to_thread(runner.start, ...)`).
    An async action or compensation is run to completion on its own event loop.
    """

    def __init__(self, journal: Journal, definitions: Iterable[SagaDefinition] = (), *, worker: str | None = None):
        self.journal = journal
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}/{uuid7()[-6:]}"
        """Who the steps' starts name: `host:pid/suffix`, so a resume on this host can tell a dead worker."""
        self.definitions: dict[str, SagaDefinition] = {}
        for definition in definitions:
            self.register(definition)

    def register(self, definition: SagaDefinition) -> SagaDefinition:
        if not isinstance(definition, SagaDefinition):
            raise SagaDefinitionError(f"expected a SagaDefinition, got {definition!r}")
        known = self.definitions.get(definition.name)
        if known is not None and known is not definition:
            raise SagaDefinitionError(f"another saga definition named {definition.name!r} is already registered")
        self.definitions[definition.name] = definition
        return definition

    def start(
        self,
        definition: str | SagaDefinition,
        input: Mapping[str, Any] | None = None,
        *,
        saga_id: str | None = None,
        run: bool = True,
    ) -> SagaResult:
        """Record SagaStarted on a new stream `saga-<id>` and run the saga until it finishes or must wait
        (`run=False`: only record it, for a worker's `resume` to run)."""
        chosen = self.register(definition) if isinstance(definition, SagaDefinition) else self._named(definition)
        saga_id = saga_id_of(check_identifier(saga_id or uuid7(), "saga id", MAX_STREAM_ID_LENGTH - len(SAGA_PREFIX)))
        try:
            data = _json(dict(input or {}), "the saga's input")
        except StepError as exc:
            raise SagaError(str(exc)) from None
        started = SagaStarted(saga_id=saga_id, definition=chosen.name, input=data, steps=chosen.step_names)
        stream = saga_stream(saga_id)
        try:
            self.journal.append(stream, saga_event(started), expected_version=0)
        except (ConcurrencyError, StreamClosedError):
            raise SagaStateError(
                f"saga {saga_id!r} already exists; `agentjournal sagas show {saga_id}` shows where it is"
            ) from None
        state = load_saga(self.journal, saga_id)
        return self._drive(state, chosen) if run else SagaResult(state)

    def resume(self, saga_id: str) -> SagaResult:
        """Continue a saga from its journal, in any process: nothing recorded is done again."""
        state = load_saga(self.journal, saga_id)
        return self._drive(state, self._for(state))

    def resume_unfinished(self) -> list[SagaResult]:
        """Resume every running or compensating saga of a known definition (what the worker does
        every few seconds); one whose step a live worker holds is left to it."""
        return [
            self.resume(state.saga_id)
            for state in list_sagas(self.journal)
            if state.status in ("running", "compensating") and state.definition in self.definitions
        ]

    def retry(self, saga_id: str, *, by: str | None = None, reason: str = "") -> SagaResult:
        """After a fix: run the failed compensation again (same idempotency key), then the rest of the rollback."""
        state = load_saga(self.journal, saga_id)
        if state.status != "needs_repair":
            raise SagaStateError(f"saga {state.saga_id!r} does not need repair: it is {state.status}")
        definition = self._for(state)
        step = state.current_step or ""
        retry = saga_event(
            RetryRequested(step=step, by=by, reason=reason),
            causation_id=state.last_event_id,
            correlation_id=state.correlation_id,
        )
        try:
            self.journal.append(state.stream_id, retry, expected_version=state.version)
        except (ConcurrencyError, StreamClosedError):
            raise SagaStateError(f"saga {state.saga_id!r} moved while asking for the retry; look at it again") from None
        return self._drive(load_saga(self.journal, saga_id), definition)

    def load(self, saga_id: str) -> SagaState:
        return load_saga(self.journal, saga_id)

    # ----- the loop --------------------------------------------------------------------------------

    def _named(self, name: str) -> SagaDefinition:
        try:
            return self.definitions[name]
        except KeyError:
            known = ", ".join(sorted(self.definitions)) or "(none)"
            raise SagaDefinitionError(
                f"no saga definition named {name!r} here (known: {known}); pass it to SagaRunner "
                "(agentjournal: --sagas package.module:attr)"
            ) from None

    def _for(self, state: SagaState) -> SagaDefinition:
        definition = self._named(state.definition)
        recorded = list(state.steps)
        if definition.step_names != recorded:
            raise SagaDefinitionError(
                f"saga {state.saga_id!r} was started with the steps {recorded}, but the definition "
                f"{definition.name!r} has {definition.step_names}; resume it with the definition it started with"
            )
        return definition

    def _drive(self, state: SagaState, definition: SagaDefinition) -> SagaResult:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise SagaError(
                "SagaRunner blocks while steps run; from async code call it in a thread: "
                "await asyncio.to_thread(runner.resume, saga_id)"
            )
        while True:
            move = next_move(state, definition, _alive)
            if isinstance(move, Stop):
                return SagaResult(state)
            if isinstance(move, Busy):
                waiting = f"{move.step} ({move.phase}) is being run by {move.worker} until {move.until}"
                return SagaResult(state, waiting=waiting)
            if isinstance(move, Finish):
                state = self._append(state, move.event) or load_saga(self.journal, state.saga_id)
                continue
            state = self._run(state, definition, move)

    def _append(self, state: SagaState, payload: SagaEvent, *, event_id: str | None = None) -> SagaState | None:
        """Append one transition at the folded version; the state after it, or None when the saga moved."""
        event = saga_event(payload, causation_id=state.last_event_id, correlation_id=state.correlation_id)
        if event_id is not None:
            event = replace(event, event_id=event_id)
        try:
            stored = self.journal.append(state.stream_id, event, expected_version=state.version)
        except (ConcurrencyError, StreamClosedError):
            return None
        for recorded in stored.events:
            state.apply(recorded)
        return state

    def _run(self, state: SagaState, definition: SagaDefinition, move: Begin) -> SagaState:
        """Claim the step, run it, record its outcome. A worker that loses the claim never runs it."""
        step = definition.step(move.step)
        key = idempotency_key(state.saga_id, step.name, move.phase)
        expires = (datetime.now(UTC) + timedelta(seconds=step.claim_s)).isoformat(timespec="microseconds")
        kind = StepStarted if move.phase == "action" else CompensationStarted
        claim_id = uuid7()
        start = kind(
            step=step.name,
            attempt=move.attempt,
            idempotency_key=key,
            worker=self.worker,
            expires_at=expires,
            resumed_from=move.resumed_from,
        )
        _EXECUTING.add(claim_id)  # before the claim is visible: a resume in this process sees it alive
        try:
            claimed = self._append(state, start, event_id=claim_id)
            if claimed is None:
                return load_saga(self.journal, state.saga_id)  # lost the claim: decide again, never run it
            context = StepContext(
                saga_id=claimed.saga_id,
                definition=definition.name,
                step=step.name,
                phase=move.phase,
                attempt=move.attempt,
                idempotency_key=key,
                input=_copy(claimed.input),
                results=_copy(claimed.results),
                journal=self.journal,
                resumed=move.resumed_from is not None,
            )
            function = step.function(move.phase)
            assert function is not None  # next_move compensates only steps that have a compensation
            outcome = _outcome(step.name, move, function, context)
            running: StepStatus = "started" if move.phase == "action" else "compensating"
            while True:
                recorded = self._append(claimed, outcome)
                if recorded is not None:
                    return recorded
                claimed = load_saga(self.journal, state.saga_id)
                held = claimed.steps[step.name]
                if held.status != running or held.claim_id != claim_id:
                    return claimed  # another worker took the step over (our claim had expired) and recorded it
        finally:
            _EXECUTING.discard(claim_id)


def _outcome(name: str, move: Begin, function: StepFunction, context: StepContext) -> SagaEvent:
    """Run the step's function; its result or its failure as the event that records it. A result that is
    not JSON fails the step (the effect may have happened, but nothing could record what it was)."""
    token = _current.set(context)
    try:
        value = function(context)
        if inspect.isawaitable(value):
            value = asyncio.run(_awaited(value))
        result = _json(value, f"the {move.phase} of step {name!r}")
    except Exception as exc:
        error_type = exc.error_type if isinstance(exc, StepError) else type(exc).__name__
        error = str(exc) or type(exc).__name__
        failed = StepFailed if move.phase == "action" else CompensationFailed
        return failed(step=name, attempt=move.attempt, error_type=error_type, error=error)
    finally:
        _current.reset(token)
    done = StepCompleted if move.phase == "action" else StepCompensated
    return done(step=name, attempt=move.attempt, result=result)


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


def _json(value: Any, what: str) -> Any:
    """`value` as plain JSON data (pydantic models and dataclasses converted), or a StepError naming `what`."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except orjson.JSONEncodeError as exc:
        raise StepError(
            "non_json_result",
            f"{what} is a {type(value).__name__}, which is not JSON ({exc}); "
            "use a dict, list, str, number, bool or None",
        ) from None


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    """A copy a step may change without changing the folded state."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(value))
    return copied


def _alive(step: StepState) -> bool:
    """Is the worker that started `step` still at it? Past its claim's expiry, never; on this host, while
    its process lives (and, in this process, while it runs the step); elsewhere, until the expiry."""
    if step.expires_at is not None and datetime.now(UTC) >= datetime.fromisoformat(step.expires_at):
        return False
    host, _, pid = (step.worker or "").partition("/")[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return step.claim_id in _EXECUTING
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ----- explainers --------------------------------------------------------------------------------


def _started(kind: str) -> Callable[[dict[str, Any]], tuple[str, str]]:
    def text(d: dict[str, Any]) -> tuple[str, str]:
        title = f"{kind} {d['step']}" + (f" (attempt {d['attempt']})" if d["attempt"] > 1 else "")
        if d.get("resumed_from"):
            title = f"{kind} {d['step']} again: {d['resumed_from']} stopped without a result"
        return title, f"key {d['idempotency_key']}, by {d['worker']}"

    return text


_TEXT: Final[dict[str, Callable[[dict[str, Any]], tuple[str, str]]]] = {
    "SagaStarted": lambda d: (
        f"Saga {d['definition']} started",
        f"{' → '.join(d['steps'])}; input {brief(d['input'], 80)}",
    ),
    "StepStarted": _started("Started"),
    "StepCompleted": lambda d: (f"{d['step']} completed", brief(d.get("result"), 100)),
    "StepFailed": lambda d: (f"{d['step']} failed ({d['error_type']})", d["error"]),
    "CompensationStarted": _started("Compensating"),
    "StepCompensated": lambda d: (f"Compensated {d['step']}", brief(d.get("result"), 100)),
    "CompensationFailed": lambda d: (
        f"Compensation of {d['step']} failed ({d['error_type']}): needs repair",
        d["error"],
    ),
    "RetryRequested": lambda d: (
        f"{d.get('by') or 'Someone'} asked to retry the compensation of {d['step']}",
        d.get("reason") or "no reason given",
    ),
    "SagaCompleted": lambda d: ("Saga completed", f"{len(d['results'])} step(s) done"),
    "SagaCompensated": lambda d: (
        "Saga rolled back cleanly",
        f"after {d['failed_step']} failed: {d['error']}" if d.get("failed_step") else "nothing was left to undo",
    ),
}


def register_saga_explainers(registry: Explainers) -> Explainers:
    """Explain every saga event with `registry`."""
    for kind, text in _TEXT.items():
        registry.register(kind, _explainer(text))
    return registry


def _explainer(text: Callable[[dict[str, Any]], tuple[str, str]]) -> Callable[[RecordedEvent], Explanation]:
    def explain(event: RecordedEvent) -> Explanation:
        title, summary = text(event.data)
        tags = {"type": event.type}
        for key in ("step", "attempt", "error_type"):
            if event.data.get(key) is not None:
                tags[key] = str(event.data[key])
        return Explanation(title, summary, tags)

    return explain
