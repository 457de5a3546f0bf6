"""Seed 001's planner contract: a plan is validated before anything runs; errors are JSON for PlanRejected."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from agentjournal.agents.planner import AgentPlan, PlanStep, PlanValidationError, validate_plan
from agentjournal.journal import Journal, NewEvent

TOOLS = ("search_docs", "query_sql", "create_ticket", "send_email")

PLAN: dict[str, Any] = {
    "runId": "run-2026-0001",
    "maxSteps": 4,
    "budgetUsd": 0.5,
    "steps": [
        {
            "id": "s1",
            "objective": "Find the refund policy",
            "tool": "search_docs",
            "input": {"query": "refund policy"},
            "successCriteria": "a policy paragraph is found",
        },
        {
            "id": "s2",
            "objective": "Count open refunds",
            "tool": "query_sql",
            "input": {"sql": "select count(*) from refunds where status = 'open'"},
            "successCriteria": "a number is returned",
        },
    ],
    "stopConditions": ["the customer has an answer", "budget exhausted"],
}


def changed(path: list[Any], value: Any) -> dict[str, Any]:
    plan = copy.deepcopy(PLAN)
    target: Any = plan
    for part in path[:-1]:
        target = target[part]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return plan


DELETE = object()


def test_a_valid_plan_validates_from_a_dict_and_from_json() -> None:
    plan = validate_plan(PLAN, TOOLS)
    assert isinstance(plan, AgentPlan)
    assert plan.runId == "run-2026-0001" and plan.maxSteps == 4 and plan.budgetUsd == 0.5
    assert [step.tool for step in plan.steps] == ["search_docs", "query_sql"]
    assert isinstance(plan.steps[0], PlanStep)
    assert validate_plan(json.dumps(PLAN), TOOLS) == plan
    assert validate_plan(json.dumps(PLAN).encode(), TOOLS) == plan
    assert plan.model_dump() == PLAN  # camelCase field names, as in the seed


@pytest.mark.parametrize(
    ("path", "value", "loc", "kind"),
    [
        (["runId"], "short", ["runId"], "string_too_short"),
        (["maxSteps"], 0, ["maxSteps"], "greater_than_equal"),
        (["maxSteps"], 21, ["maxSteps"], "less_than_equal"),
        (["maxSteps"], 2.5, ["maxSteps"], "int_type"),
        (["budgetUsd"], 0.001, ["budgetUsd"], "greater_than_equal"),
        (["budgetUsd"], 10.01, ["budgetUsd"], "less_than_equal"),
        (["steps"], [], ["steps"], "too_short"),
        (["stopConditions"], [], ["stopConditions"], "too_short"),
        (["stopConditions"], DELETE, ["stopConditions"], "missing"),
        (["steps", 0, "objective"], "go", ["steps", 0, "objective"], "string_too_short"),
        (["steps", 1, "successCriteria"], "ok", ["steps", 1, "successCriteria"], "string_too_short"),
        (["steps", 1, "input"], "select 1", ["steps", 1, "input"], "dict_type"),
        (
            ["steps", 0, "success_criteria"],
            "snake case is refused",
            ["steps", 0, "success_criteria"],
            "extra_forbidden",
        ),
        (["steps", 1, "id"], "s1", ["steps"], "value_error"),
    ],
)
def test_each_bound_of_the_contract_is_enforced(path: list[Any], value: Any, loc: list[Any], kind: str) -> None:
    with pytest.raises(PlanValidationError) as caught:
        validate_plan(changed(path, value), TOOLS)
    assert [(error["loc"], error["type"]) for error in caught.value.errors] == [(loc, kind)]
    json.dumps(caught.value.errors)  # ready for a PlanRejected event
    assert ".".join(map(str, loc)) in str(caught.value)


def test_the_tool_enum_is_the_agents_registered_tools() -> None:
    plan = changed(["steps", 1, "tool"], "drop_database")
    with pytest.raises(PlanValidationError) as caught:
        validate_plan(plan, TOOLS)
    [error] = caught.value.errors
    assert error["type"] == "unknown_tool" and error["loc"] == ["steps", 1, "tool"]
    assert "unknown tool 'drop_database'" in error["msg"] and "query_sql" in error["msg"]
    assert validate_plan(plan, [*TOOLS, "drop_database"]).steps[1].tool == "drop_database"


def test_every_problem_is_reported_at_once() -> None:
    plan = changed(["maxSteps"], 99)
    plan["steps"][0]["tool"] = "rm_rf"
    with pytest.raises(PlanValidationError) as caught:
        validate_plan(plan, TOOLS)
    assert {error["type"] for error in caught.value.errors} == {"less_than_equal", "unknown_tool"}


@pytest.mark.parametrize(("raw", "message"), [("{not json", "not JSON"), ("[1, 2]", "valid dictionary")])
def test_text_that_is_not_a_plan_object_is_rejected(raw: str, message: str) -> None:
    with pytest.raises(PlanValidationError, match=message) as caught:
        validate_plan(raw, TOOLS)
    json.dumps(caught.value.errors)


def test_a_rejection_goes_into_the_journal_as_is(sqlite_or_postgres_url: str) -> None:
    with Journal.open(sqlite_or_postgres_url) as journal:
        try:
            validate_plan(changed(["budgetUsd"], 50), TOOLS)
        except PlanValidationError as exc:
            journal.append("run-1", NewEvent("PlanRejected", {"errors": exc.errors}))
        [event] = journal.read_stream("run-1")
        assert event.data["errors"][0]["loc"] == ["budgetUsd"]
        assert event.data["errors"][0]["ctx"] == {"le": 10}
