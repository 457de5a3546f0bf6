"""Seed 001's planner contract: the bounded plan a planner must emit, validated before anything runs.

Field names are camelCase as in the seed, so a plan written for the seed's zod schema validates
here unchanged. The seed's tool enum is not fixed: it is the set of tools the agent registered.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentjournal.journal.errors import AgentJournalError

__all__ = ["AgentPlan", "PlanStep", "PlanValidationError", "validate_plan", "validation_errors"]


class PlanStep(BaseModel):
    """One step of a plan: which tool, with what input, and how success is recognised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1)]
    objective: Annotated[str, Field(min_length=5)]
    tool: Annotated[str, Field(min_length=1)]
    input: dict[str, Any]
    successCriteria: Annotated[str, Field(min_length=5)]  # camelCase: the seed's wire names


class AgentPlan(BaseModel):
    """A bounded plan: at most 20 steps, a budget of 0.01 to 10 USD, and explicit stop conditions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runId: Annotated[str, Field(min_length=8)]
    maxSteps: Annotated[int, Field(ge=1, le=20, strict=True)]
    budgetUsd: Annotated[float, Field(ge=0.01, le=10)]
    steps: Annotated[list[PlanStep], Field(min_length=1)]
    stopConditions: Annotated[list[str], Field(min_length=1)]

    @field_validator("steps")
    @classmethod
    def _unique_step_ids(cls, steps: list[PlanStep]) -> list[PlanStep]:
        seen: set[str] = set()
        for step in steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} appears more than once")
            seen.add(step.id)
        return steps


class PlanValidationError(AgentJournalError, ValueError):
    """A plan that must not run. `errors` is JSON-able, ready for a PlanRejected event."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        lines = [f"{_where(error['loc'])}: {error['msg']}" for error in errors]
        super().__init__(f"the plan is invalid ({len(errors)} error(s)): " + "; ".join(lines))


def validate_plan(raw: str | bytes | dict[str, Any], tools: Collection[str]) -> AgentPlan:
    """Parse and validate a plan; every step's tool must be one of `tools` (the agent's registered tools).

    Raises PlanValidationError listing every problem found (JSON syntax, schema, unknown tools).
    """
    data: Any = raw
    if isinstance(raw, str | bytes):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            message = f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            raise PlanValidationError([{"type": "json_invalid", "loc": [], "msg": message}]) from None
    errors: list[dict[str, Any]] = []
    plan: AgentPlan | None = None
    try:
        plan = AgentPlan.model_validate(data)
    except ValidationError as exc:
        errors.extend(validation_errors(exc))
    allowed = sorted(tools)
    steps = data.get("steps") if isinstance(data, dict) else None
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        tool = step.get("tool") if isinstance(step, dict) else None
        if isinstance(tool, str) and tool and tool not in tools:
            errors.append(
                {
                    "type": "unknown_tool",
                    "loc": ["steps", index, "tool"],
                    "msg": f"unknown tool {tool!r}; the agent's tools are: {', '.join(allowed) or '(none)'}",
                    "input": tool,
                }
            )
    if errors or plan is None:
        raise PlanValidationError(errors)
    return plan


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as JSON-able dicts (type, loc, msg, input, ctx), for events and messages."""
    return [_jsonable(error) for error in exc.errors(include_url=False)]


def _jsonable(error: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": error["type"], "loc": list(error["loc"]), "msg": error["msg"]}
    if "input" in error:
        entry["input"] = _plain(error["input"])
    if error.get("ctx"):
        entry["ctx"] = {key: _plain(value) for key, value in error["ctx"].items()}
    return entry


def _plain(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _where(loc: list[Any]) -> str:
    return ".".join(str(part) for part in loc) or "(plan)"
