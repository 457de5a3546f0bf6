"""Saga steps that are agents' tool calls, under the same policy guard as a run's calls.

`tool_step(tool, arguments, compensation=..., policy=...)` makes a `messaging.Step` whose action
(and compensation) validates the arguments against the tool's signature, asks the policy, and
executes the tool with the step's idempotency key, as the runtime executes a run's call. A call the
policy denies fails the step with the policy's reason; a call the policy sends to a human fails it
too, since a saga step cannot wait for an approval. The policy sees no run metrics (a saga is not a
run): a rule on `run_metrics` never matches here.

It lives in agents because messaging may not import agents; the saga runner knows nothing of tools.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agentjournal.agents.policy import Policy
from agentjournal.agents.tools import RunContext, Tool, ToolArgumentsError, execute, validate_arguments
from agentjournal.messaging.sagas import (
    DEFAULT_CLAIM_S,
    SagaDefinitionError,
    Step,
    StepContext,
    StepError,
    StepFunction,
)

__all__ = ["Arguments", "tool_action", "tool_step"]

Arguments = Callable[[StepContext], Mapping[str, Any]]
"""The tool's arguments, from the step's context (the saga's input and the earlier steps' results)."""


def tool_action(tool: Tool, arguments: Arguments, *, policy: Policy | None = None) -> StepFunction:
    """An action (or compensation) that is one guarded call of `tool`."""
    if not isinstance(tool, Tool):
        raise SagaDefinitionError(f"expected a Tool (made with @tool), got {tool!r}")

    async def call(context: StepContext) -> Any:
        try:
            validated = validate_arguments(tool, arguments(context))
        except ToolArgumentsError as exc:
            raise StepError("invalid_arguments", str(exc)) from None
        if policy is not None:
            decision = policy.evaluate(tool.name, validated)
            if decision.action == "deny":
                raise StepError("policy_denied", decision.reason)
            if decision.action == "require_human_approval":
                raise StepError("needs_approval", f"{decision.reason} (a saga step cannot wait for a human's approval)")
        run = RunContext(
            run_id=context.saga_id,
            call_id=f"{context.step}:{context.phase}",
            agent=f"saga:{context.definition}",
            tenant_id=None,
            user_id=None,
            idempotency_key=context.idempotency_key,
        )
        observation = await execute(tool, validated, idempotency_key=context.idempotency_key, run=run)
        if not observation.ok:
            raise StepError(observation.error_type or "tool_failed", observation.error or f"{tool.name} failed")
        return observation.output

    call.__qualname__ = f"tool_action({tool.name})"
    return call


def tool_step(
    tool: Tool,
    arguments: Arguments,
    *,
    compensation: Tool | None = None,
    compensation_arguments: Arguments | None = None,
    policy: Policy | None = None,
    name: str | None = None,
    claim_s: float = DEFAULT_CLAIM_S,
) -> Step:
    """A saga step named after `tool` (or `name`) whose action calls it, and whose compensation calls
    `compensation` with `compensation_arguments` (the step's own result is `context.result`)."""
    undo = None
    if compensation is not None:
        if compensation_arguments is None:
            raise SagaDefinitionError(f"step {name or tool.name!r}: a compensation tool needs compensation_arguments")
        undo = tool_action(compensation, compensation_arguments, policy=policy)
    return Step(name or tool.name, tool_action(tool, arguments, policy=policy), undo, claim_s=claim_s)
