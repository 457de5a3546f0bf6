"""`@journaled`: a plain (or async) function tool that records itself and obeys the policy inside a run.

    @journaled
    def lookup_order(order_id: str) -> dict: ...

    @journaled(side_effecting=True)
    def issue_refund(order_id: str, amount: float, idempotency_key: str = "") -> dict: ...

Outside a recorded run the function is called as it is. Inside one (`current_run()`), a call:

1. validates its arguments against the signature (as the runtime's tools do); bad ones are recorded as a
   refused call and raise InvalidToolArguments;
2. records ToolProposed, under the call id the model's last reply gave this tool and these arguments;
3. lets the recorder's policy decide: denied raises ToolDenied; held for a human raises
   ApprovalRequired (wait with `run.wait_for_decision(error.call_id)`, then call the tool again with
   the same arguments: the approved call runs, a rejected one raises ToolDenied);
4. claims a side-effecting call before it runs (a second process claiming it fails), and hands a
   function that declares `idempotency_key` the call's key;
5. records the result (ToolExecuted) or the exception (ToolFailed, then re-raised), and the observation.

Every refusal is a ToolBlocked, whose message is what to tell the model: catch it in the loop and send
it back as the tool's error result (`is_error: true` for Anthropic). The function's own exceptions are
re-raised unchanged. On replay the function does not run: the call returns the recorded output (as
JSON data) or raises RecordedToolError with the recorded failure.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from pydantic import ValidationError

from agentjournal.agents.planner import validation_errors
from agentjournal.agents.tools import (
    IDEMPOTENCY_PARAMETER,
    Tool,
    ToolArgumentsError,
    idempotency_key,
    jsonable_output,
    keyword_arguments,
    tool,
)
from agentjournal.integrations.recorder import RecordedRun, ToolDecision, current_run
from agentjournal.integrations.replay import RecordedToolError
from agentjournal.journal.errors import AgentJournalError

__all__ = ["ApprovalRequired", "InvalidToolArguments", "JournaledTool", "ToolBlocked", "ToolDenied", "journaled"]


class ToolBlocked(AgentJournalError):
    """A `@journaled` call that did not run. Its message is meant for the model (as the tool's error)."""

    error_type = "blocked"

    def __init__(self, tool: str, call_id: str, reason: str, *, rule: str | None = None) -> None:
        self.tool = tool
        self.call_id = call_id
        self.reason = reason
        self.rule = rule
        super().__init__(self.describe())

    def describe(self) -> str:
        return f"{self.tool} was not run: {self.reason}"


class ToolDenied(ToolBlocked):
    """The policy denied the call (`error_type` policy_denied), or a human rejected it (rejected_by_human)."""

    def __init__(self, tool: str, call_id: str, reason: str, *, rule: str | None = None, by_human: bool = False):
        self.error_type = "rejected_by_human" if by_human else "policy_denied"
        super().__init__(tool, call_id, reason, rule=rule)

    def describe(self) -> str:
        if self.error_type == "rejected_by_human":
            return f"{self.tool} was not run: {self.reason}"
        rule = f" (rule {self.rule})" if self.rule else ""
        return f"{self.tool} was not run: the policy denies it{rule}: {self.reason}"


class ApprovalRequired(ToolBlocked):
    """The policy sends the call to a human; `approval_id` is what `agentjournal approvals approve` takes."""

    error_type = "waiting_approval"

    def __init__(self, tool: str, call_id: str, reason: str, *, approval_id: str, rule: str | None = None):
        self.approval_id = approval_id
        super().__init__(tool, call_id, reason, rule=rule)

    def describe(self) -> str:
        return f"{self.tool} waits for a human's approval ({self.approval_id}): {self.reason}"


class InvalidToolArguments(ToolBlocked):
    """The arguments do not fit the function's signature; `errors` are pydantic's, as JSON."""

    error_type = "invalid_arguments"

    def __init__(self, tool: str, call_id: str, error: ToolArgumentsError) -> None:
        self.errors = error.errors
        super().__init__(tool, call_id, str(error))

    def describe(self) -> str:
        return self.reason


@dataclass(frozen=True)
class _Step:
    """A call that may run: its id, the function's keyword arguments, the recorded outcome on replay."""

    call_id: str
    kwargs: dict[str, Any]
    replayed: dict[str, Any] | None


class JournaledTool:
    """A function that records its calls into the current run; call it as the function itself."""

    def __init__(self, fn: Callable[..., Any], spec: Tool, claim_timeout_s: float) -> None:
        self.fn = fn
        self.spec = spec
        self.claim_timeout_s = claim_timeout_s
        self._signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def schema(self) -> dict[str, Any]:
        """`{"name", "description", "parameters"}`: what `RunRecorder.start(tools=[...])` pins."""
        return {"name": self.name, "description": self.spec.description, "parameters": self.parameters}

    @property
    def parameters(self) -> dict[str, Any]:
        return self.spec.arguments_model.model_json_schema()

    @property
    def anthropic_tool(self) -> dict[str, Any]:
        """The tool as the Messages API's `tools=[...]` takes it."""
        return {"name": self.name, "description": self.spec.description, "input_schema": self.parameters}

    @property
    def openai_tool(self) -> dict[str, Any]:
        """The tool as Chat Completions' `tools=[...]` takes it (the Responses API: `openai_function`)."""
        return {"type": "function", "function": self.schema}

    @property
    def openai_function(self) -> dict[str, Any]:
        return {"type": "function", **self.schema}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is None:
            return self.fn(*args, **kwargs)
        if self.spec.is_async:
            return self._acall(run, args, kwargs)
        step = self._before(run, args, kwargs)
        if step.replayed is not None:
            return self._replayed(run, step)
        started = time.perf_counter()
        try:
            result = self.fn(**step.kwargs)
        except Exception as exc:
            self._failed(run, step, exc, started)
            raise
        return self._succeeded(run, step, result, started)

    async def _acall(self, run: RecordedRun, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        step = self._before(run, args, kwargs)
        if step.replayed is not None:
            return self._replayed(run, step)
        started = time.perf_counter()
        try:
            result = await self.fn(**step.kwargs)
        except Exception as exc:
            self._failed(run, step, exc, started)
            raise
        return self._succeeded(run, step, result, started)

    def __repr__(self) -> str:
        return f"journaled({self.name})"

    # ----- before: arguments, proposal, policy, claim ------------------------------------------------

    def _before(self, run: RecordedRun, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Step:
        name = self.name
        try:
            given = dict(self._signature.bind_partial(*args, **kwargs).arguments)
        except TypeError as exc:
            given = dict(kwargs)
            error = ToolArgumentsError(name, [{"type": "signature", "loc": [], "msg": str(exc)}])
            raise InvalidToolArguments(name, self._refuse(run, given, error), error) from None
        if self.spec.wants_idempotency_key:
            given.pop(IDEMPOTENCY_PARAMETER, None)  # the call's own key is handed in below
        try:
            instance = self.spec.arguments_model.model_validate(given)
        except ValidationError as exc:
            error = ToolArgumentsError(name, validation_errors(exc))
            raise InvalidToolArguments(name, self._refuse(run, given, error), error) from None
        arguments = instance.model_dump(mode="json")
        decision = self._decide(run, _plain(given), arguments)
        call = run.state.calls[decision.call_id]
        if decision.action == "deny":
            by_human = call.status == "rejected"
            if not call.observed:
                kind = "rejected_by_human" if by_human else "policy_denied"
                run.observe_refusal(decision.call_id, error_type=kind, error=decision.reason)
            raise ToolDenied(name, decision.call_id, decision.reason, rule=decision.rule, by_human=by_human)
        if decision.action == "require_human_approval":
            assert decision.approval_id is not None
            raise ApprovalRequired(
                name, decision.call_id, decision.reason, approval_id=decision.approval_id, rule=decision.rule
            )
        if self.spec.side_effecting or call.status == "approved":
            key = run.claim(decision.call_id, timeout_s=self.claim_timeout_s)
        else:
            key = idempotency_key(run.run_id, f"{call.step}.{call.index}", name)
        values = keyword_arguments(instance)
        if self.spec.wants_idempotency_key:
            values[IDEMPOTENCY_PARAMETER] = key
        replay = run.recorder.replay
        replayed = replay.tool_outcome(decision.call_id, name, arguments) if replay is not None else None
        return _Step(decision.call_id, values, replayed)

    def _decide(self, run: RecordedRun, given: dict[str, Any], arguments: dict[str, Any]) -> ToolDecision:
        """A call proposed now, or the held one with these arguments (called again once a human decided)."""
        held = self._held(run, arguments)
        if held is not None:
            if run.state.calls[held].status == "waiting_approval":
                run.refresh()
            return run.decision(held)
        call_id = run.matching_call(self.name, given) or run.matching_call(self.name, arguments)
        return run.tool_call(self.name, arguments, call_id=call_id)

    def _held(self, run: RecordedRun, arguments: dict[str, Any]) -> str | None:
        for call in run.state.open_calls():
            if call.tool == self.name and call.arguments == arguments and call.approval_id is not None:
                return call.call_id
        return None

    def _refuse(self, run: RecordedRun, given: dict[str, Any], error: ToolArgumentsError) -> str:
        plain = _plain(given)
        return run.refuse_call(
            self.name,
            plain,
            error_type="invalid_arguments",
            error=str(error),
            call_id=run.matching_call(self.name, plain),
        )

    # ----- after: the result -----------------------------------------------------------------------------

    def _succeeded(self, run: RecordedRun, step: _Step, result: Any, started: float) -> Any:
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        try:
            output = jsonable_output(result)
        except TypeError as exc:
            error = f"{self.name}: {exc}"
            run.tool_result(step.call_id, error=error, error_type="non_json_output", latency_ms=latency_ms)
            raise TypeError(f"{error}; a journaled tool must return JSON data (or a pydantic model)") from None
        run.tool_result(step.call_id, output, latency_ms=latency_ms, cost=self.spec.cost_usd)
        return result

    def _failed(self, run: RecordedRun, step: _Step, exc: Exception, started: float) -> None:
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        error = str(exc) or type(exc).__name__
        run.tool_result(step.call_id, error=error, error_type=type(exc).__name__, latency_ms=latency_ms)

    def _replayed(self, run: RecordedRun, step: _Step) -> Any:
        outcome = step.replayed
        assert outcome is not None
        latency_ms = float(outcome.get("latency_ms") or 0.0)
        if outcome["type"] == "ToolExecuted":
            output = outcome.get("output")
            run.tool_result(step.call_id, output, latency_ms=latency_ms, cost=outcome.get("cost_usd", 0.0))
            return output
        run.tool_result(step.call_id, error=outcome["error"], error_type=outcome["error_type"], latency_ms=latency_ms)
        raise RecordedToolError(self.name, outcome["error_type"], outcome["error"])


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """The arguments as the model would have sent them (JSON); what is not JSON is shown as its repr."""
    try:
        plain = jsonable_output(values)
    except TypeError:
        return {key: repr(value) for key, value in values.items()}
    return plain if isinstance(plain, dict) else dict(values)


@overload
def journaled(fn: Callable[..., Any], /) -> JournaledTool: ...


@overload
def journaled(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    side_effecting: bool = False,
    cost_usd: float = 0.0,
    claim_timeout_s: float = 30.0,
) -> Callable[[Callable[..., Any]], JournaledTool]: ...


def journaled(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    side_effecting: bool = False,
    cost_usd: float = 0.0,
    claim_timeout_s: float = 30.0,
) -> JournaledTool | Callable[[Callable[..., Any]], JournaledTool]:
    """`@journaled` or `@journaled(side_effecting=True, ...)`: a function tool recorded in the current run.

    The signature is the argument schema (type annotations required, as for the runtime's `@tool`); the
    docstring's first paragraph is the description. `claim_timeout_s` is how long a claim holds.
    """

    def make(function: Callable[..., Any]) -> JournaledTool:
        spec = tool(name=name, description=description, side_effecting=side_effecting, cost_usd=cost_usd)(function)
        return JournaledTool(function, spec, claim_timeout_s)

    return make(fn) if fn is not None else make
