"""Typed tools and their executor: arguments validated from the signature, every outcome an Observation.

A tool is a plain or async function whose signature is its argument schema::

    @tool(side_effecting=True, max_calls_per_run=5, cost_usd=0.01)
    def create_ticket(title: str, priority: Literal["low", "high"] = "low", idempotency_key: str = "") -> dict:
        ...

Arguments are validated (and coerced) before the policy guard sees them, so a policy never
judges a call that could not run. A side-effecting tool that declares `idempotency_key` receives
a deterministic key from the executor. Outputs must be JSON; exceptions, time-outs and exceeded
limits all come back as failed Observations, never as exceptions. `sandboxed=True` runs the tool
in a separate process with CPU-time and memory limits and a clean environment (agents/sandbox.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import inspect
import itertools
import os
import queue
import re
import threading
import time
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, overload

import orjson
from pydantic import BaseModel, ConfigDict, PydanticUserError, ValidationError, create_model

from agentjournal.agents.planner import validation_errors
from agentjournal.agents.sandbox import SandboxLimits, run_sandboxed
from agentjournal.journal.envelope import canonical_json
from agentjournal.journal.errors import AgentJournalError

__all__ = [
    "IDEMPOTENCY_PARAMETER",
    "Observation",
    "RunContext",
    "SandboxLimits",
    "Tool",
    "ToolArgumentsError",
    "ToolRegistry",
    "TransientToolError",
    "UnknownToolError",
    "arguments_model",
    "current_run",
    "execute",
    "idempotency_key",
    "jsonable_output",
    "keyword_arguments",
    "tool",
    "validate_arguments",
]

IDEMPOTENCY_PARAMETER = "idempotency_key"
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class RunContext:
    """The run a tool call belongs to, for tools that need it (`current_run()` inside the tool)."""

    run_id: str
    call_id: str
    agent: str
    tenant_id: str | None
    user_id: str | None
    idempotency_key: str


_current_run: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("agentjournal_run", default=None)


def current_run() -> RunContext | None:
    """The run whose tool call is executing in this context (None outside a tool call, or in a sandbox)."""
    return _current_run.get()


class TransientToolError(AgentJournalError):
    """Raise it from a tool for a failure worth retrying (a flaky network, a busy service)."""


class UnknownToolError(AgentJournalError, LookupError):
    def __init__(self, name: str, known: list[str]):
        self.name = name
        super().__init__(f"unknown tool {name!r}; registered tools: {', '.join(known) or '(none)'}")


class ToolArgumentsError(AgentJournalError, ValueError):
    """Arguments that do not fit the tool's signature; `errors` is JSON-able (pydantic's errors)."""

    def __init__(self, tool: str, errors: list[dict[str, Any]]):
        self.tool = tool
        self.errors = errors
        details = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(arguments)'}: {error['msg']}" for error in errors
        )
        super().__init__(f"tool {tool!r}: invalid arguments: {details}")


@dataclass(frozen=True)
class Observation:
    """What a tool call produced: its JSON output, or a structured error. Never an exception.

    error_type is the exception's class name, or one of: invalid_arguments, timeout, resource_limit,
    non_json_output, call_limit, sandbox_error.
    """

    ok: bool
    output: Any = None
    error_type: str | None = None
    error: str | None = None
    latency_ms: float = 0.0
    retryable: bool = False
    cost_usd: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def failure(cls, error_type: str, error: str, *, latency_ms: float = 0.0, retryable: bool = False) -> Observation:
        return cls(False, None, error_type, error, latency_ms, retryable)


@dataclass
class Tool:
    """A registered tool: the function, its argument model and its operating limits."""

    name: str
    description: str
    fn: Callable[..., Any]
    arguments_model: type[BaseModel]
    timeout_s: float = 30.0
    side_effecting: bool = False
    sandboxed: bool = False
    max_calls_per_run: int | None = None
    cost_usd: float = 0.0
    wants_idempotency_key: bool = False
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    schema_hash: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not TOOL_NAME.fullmatch(self.name):
            raise ValueError(
                f"tool name {self.name!r} must be 1 to 64 letters, digits, '_' or '-' (what model APIs accept)"
            )
        if self.timeout_s <= 0:
            raise ValueError(f"tool {self.name!r}: timeout_s must be positive, got {self.timeout_s}")
        if self.max_calls_per_run is not None and self.max_calls_per_run < 0:
            raise ValueError(f"tool {self.name!r}: max_calls_per_run must be >= 0, got {self.max_calls_per_run}")
        if self.cost_usd < 0:
            raise ValueError(f"tool {self.name!r}: cost_usd must be >= 0, got {self.cost_usd}")
        if self.sandboxed:
            _check_importable(self.name, self.fn)
        self.schema_hash = hashlib.sha256(canonical_json(self.schema())).hexdigest()

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def schema(self) -> dict[str, Any]:
        """The JSON description a model sees (and whose hash a run pins)."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.arguments_model.model_json_schema(),
            "side_effecting": self.side_effecting,
        }

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly (no validation, no limits), e.g. in a unit test."""
        return self.fn(*args, **kwargs)


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float = 30.0,
    side_effecting: bool = False,
    sandboxed: bool = False,
    max_calls_per_run: int | None = None,
    cost_usd: float = 0.0,
    limits: SandboxLimits | None = None,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float = 30.0,
    side_effecting: bool = False,
    sandboxed: bool = False,
    max_calls_per_run: int | None = None,
    cost_usd: float = 0.0,
    limits: SandboxLimits | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a Tool of a function: `@tool` or `@tool(timeout_s=5, side_effecting=True, ...)`."""

    def make(function: Callable[..., Any]) -> Tool:
        tool_name = name or function.__name__
        model, wants_key = arguments_model(tool_name, function)
        return Tool(
            name=tool_name,
            description=description if description is not None else _first_paragraph(function.__doc__),
            fn=function,
            arguments_model=model,
            timeout_s=timeout_s,
            side_effecting=side_effecting,
            sandboxed=sandboxed,
            max_calls_per_run=max_calls_per_run,
            cost_usd=cost_usd,
            wants_idempotency_key=wants_key,
            limits=limits or SandboxLimits(),
        )

    return make(fn) if fn is not None else make


def arguments_model(tool_name: str, function: Callable[..., Any]) -> tuple[type[BaseModel], bool]:
    """A pydantic model of the function's parameters (minus `idempotency_key`, which the executor fills)."""
    if not callable(function):
        raise TypeError(f"tool {tool_name!r}: expected a function, got {type(function).__name__}")
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except NameError as exc:
        raise TypeError(f"tool {tool_name!r}: cannot resolve a type annotation: {exc}") from None
    fields: dict[str, Any] = {}
    wants_key = False
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD, parameter.POSITIONAL_ONLY):
            raise TypeError(f"tool {tool_name!r}: parameter {parameter.name!r} must be an ordinary named parameter")
        if parameter.name == IDEMPOTENCY_PARAMETER:
            wants_key = True
            continue
        if parameter.name not in hints:
            raise TypeError(f"tool {tool_name!r}: parameter {parameter.name!r} has no type annotation")
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (hints[parameter.name], default)
    try:
        model = create_model(f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
        model.model_json_schema()
    except PydanticUserError as exc:  # e.g. a parameter typed with a class pydantic cannot validate
        raise TypeError(
            f"tool {tool_name!r}: its parameters cannot be described as JSON: {str(exc).splitlines()[0]}"
        ) from None
    return model, wants_key


def _first_paragraph(doc: str | None) -> str:
    return inspect.cleandoc(doc).split("\n\n", 1)[0].replace("\n", " ") if doc else ""


def _check_importable(name: str, fn: Callable[..., Any]) -> None:
    """A sandboxed tool is re-imported by name in a fresh process, so it must live at a module's top level."""
    qualname = getattr(fn, "__qualname__", "")
    module = getattr(fn, "__module__", None)
    if not module or module == "__main__" or "<" in qualname or "." in qualname:
        raise TypeError(
            f"tool {name!r}: a sandboxed tool must be a top-level function of an importable module "
            f"(got {module}.{qualname}); the sandbox imports it by name in a fresh process"
        )


class ToolRegistry:
    """The tools of one agent, by name. Its names are the planner's tool enum."""

    def __init__(self, tools: typing.Iterable[Tool | Callable[..., Any]] = ()):
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.register(item)

    def register(self, tool_or_fn: Tool | Callable[..., Any]) -> Tool:
        registered = tool_or_fn if isinstance(tool_or_fn, Tool) else tool(tool_or_fn)
        if registered.name in self._tools:
            raise ValueError(f"a tool named {registered.name!r} is already registered")
        self._tools[registered.name] = registered
        return registered

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._tools)

    def argument_names(self) -> dict[str, list[str]]:
        """{tool: its argument names}, for `Policy.check_tools` to catch rules that can never match."""
        return {name: list(self._tools[name].arguments_model.model_fields) for name in self.names()}

    def schema_hashes(self) -> dict[str, str]:
        """{name: schema hash}, as pinned in RunStarted."""
        return {name: self._tools[name].schema_hash for name in self.names()}

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools[name] for name in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)


def validate_arguments(tool: Tool, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments as the tool will receive them, in JSON form; raises ToolArgumentsError."""
    return _validated(tool, arguments).model_dump(mode="json")


def _validated(tool: Tool, arguments: Mapping[str, Any]) -> BaseModel:
    if not isinstance(arguments, Mapping):
        raise ToolArgumentsError(
            tool.name,
            [{"type": "dict_type", "loc": [], "msg": f"arguments must be an object, got {type(arguments).__name__}"}],
        )
    if IDEMPOTENCY_PARAMETER in arguments and tool.wants_idempotency_key:
        raise ToolArgumentsError(
            tool.name,
            [{"type": "reserved", "loc": [IDEMPOTENCY_PARAMETER], "msg": "is set by the executor, not by the caller"}],
        )
    try:
        return tool.arguments_model.model_validate(dict(arguments))
    except ValidationError as exc:
        raise ToolArgumentsError(tool.name, validation_errors(exc)) from None


def keyword_arguments(instance: BaseModel) -> dict[str, Any]:
    """Validated arguments as the function's keyword arguments, with their Python values (a datetime)."""
    return {name: getattr(instance, name) for name in type(instance).model_fields}


def idempotency_key(run_id: str, step: str | int, tool_name: str) -> str:
    """The key of one side effect: the same for every attempt of the same step of the same run."""
    return hashlib.sha256(canonical_json([run_id, str(step), tool_name])).hexdigest()[:32]


def jsonable_output(value: Any) -> Any:
    """A tool's return value as plain JSON data (models and dataclasses converted); TypeError if it is not JSON."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"the output ({type(value).__name__}) is not JSON-serializable: {exc}") from None


async def execute(
    tool: Tool,
    arguments: Mapping[str, Any],
    *,
    idempotency_key: str,
    calls_so_far: int = 0,
    run: RunContext | None = None,
) -> Observation:
    """Run one call of `tool`; every outcome, including bad arguments and time-outs, is an Observation.

    `calls_so_far` is how many calls of this tool the run has made, checked against max_calls_per_run;
    `run` is what `current_run()` returns inside the tool.
    """
    token = _current_run.set(run)
    try:
        return await _execute(tool, arguments, idempotency_key, calls_so_far)
    finally:
        _current_run.reset(token)


async def _execute(tool: Tool, arguments: Mapping[str, Any], idempotency_key: str, calls_so_far: int) -> Observation:
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    if tool.max_calls_per_run is not None and calls_so_far >= tool.max_calls_per_run:
        return Observation.failure(
            "call_limit", f"{tool.name} may be called at most {tool.max_calls_per_run} time(s) per run"
        )
    try:
        instance = _validated(tool, arguments)
    except ToolArgumentsError as exc:
        return Observation(False, {"errors": exc.errors}, "invalid_arguments", str(exc), elapsed())
    key = {IDEMPOTENCY_PARAMETER: idempotency_key} if tool.wants_idempotency_key else {}
    if tool.sandboxed:  # the child gets JSON and validates it again into Python values
        outcome = await run_sandboxed(
            tool.fn.__module__,
            tool.fn.__qualname__,
            {**instance.model_dump(mode="json"), **key},
            timeout_s=tool.timeout_s,
            limits=tool.limits,
        )
        if outcome.ok:
            return Observation(True, outcome.output, latency_ms=elapsed(), cost_usd=tool.cost_usd)
        return Observation(
            False,
            None,
            outcome.error_type,
            outcome.error,
            elapsed(),
            retryable=outcome.error_type in ("timeout", TransientToolError.__name__),
            cost_usd=tool.cost_usd,
        )
    call = _call(tool, {**keyword_arguments(instance), **key})
    try:
        result = await asyncio.wait_for(call, timeout=tool.timeout_s)
    except TimeoutError:
        message = f"{tool.name} did not finish within {tool.timeout_s:g} s"
        return Observation(False, None, "timeout", message, elapsed(), retryable=True, cost_usd=tool.cost_usd)
    except Exception as exc:
        return Observation(
            False,
            None,
            type(exc).__name__,
            str(exc) or type(exc).__name__,
            elapsed(),
            retryable=isinstance(exc, TransientToolError | ConnectionError),
            cost_usd=tool.cost_usd,
        )
    try:
        output = jsonable_output(result)
    except TypeError as exc:
        return Observation(False, None, "non_json_output", f"{tool.name}: {exc}", elapsed(), cost_usd=tool.cost_usd)
    return Observation(True, output, latency_ms=elapsed(), cost_usd=tool.cost_usd)


def _call(tool: Tool, kwargs: dict[str, Any]) -> Awaitable[Any]:
    if tool.is_async:
        return typing.cast(Awaitable[Any], tool.fn(**kwargs))
    return _on_daemon_thread(tool, kwargs)


class _DaemonThreads:
    """Reusable daemon worker threads for plain-function tools.

    Not the loop's default executor: `asyncio.run` waits for that one at shutdown (and the
    interpreter at exit), so a tool that hangs past its timeout would hang the caller too. A thread
    cannot be killed, so a hung tool keeps its worker and the next call gets a new one; a tool that
    may hang for good should be sandboxed (a process can be killed).
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._started = itertools.count(1)

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)
        if not self._idle.acquire(blocking=False):  # every worker is busy: add one
            name = f"agentjournal-tool-{next(self._started)}"
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        while True:
            self._jobs.get()()
            self._idle.release()


_threads = _DaemonThreads()


def _reset_threads_after_fork() -> None:
    global _threads  # noqa: PLW0603 - a forked child has none of the parent's threads
    _threads = _DaemonThreads()


os.register_at_fork(after_in_child=_reset_threads_after_fork)


def _on_daemon_thread(tool: Tool, kwargs: dict[str, Any]) -> asyncio.Future[Any]:
    """Run a plain function on a daemon worker thread; the future settles on the caller's loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the caller timed out or was cancelled
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def job() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = context.run(tool.fn, **kwargs)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed while the tool was still running
            loop.call_soon_threadsafe(settle, result, error)

    _threads.submit(job)
    return future
