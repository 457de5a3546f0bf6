"""Typed tools: argument models from signatures, validation, limits, and outcomes as Observations."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from agentjournal.agents.tools import (
    Observation,
    Tool,
    ToolArgumentsError,
    ToolRegistry,
    TransientToolError,
    UnknownToolError,
    execute,
    idempotency_key,
    tool,
    validate_arguments,
)

CALLS: list[dict[str, Any]] = []


@tool(side_effecting=True, max_calls_per_run=2, cost_usd=0.05, timeout_s=5)
def create_ticket(
    title: str, priority: Literal["low", "high"] = "low", due: datetime | None = None, idempotency_key: str = ""
) -> dict[str, Any]:
    """Open a support ticket.

    The second paragraph is not part of the description.
    """
    CALLS.append({"title": title, "due": due, "key": idempotency_key, "thread": threading.current_thread().name})
    return {"id": f"T-{len(CALLS)}", "priority": priority}


@tool
def search_docs(query: str, limit: int = 5) -> list[str]:
    """Search the documentation."""
    return [f"{query} #{index}" for index in range(limit)]


class Order(BaseModel):
    order_id: str
    total: float


@tool
async def lookup_order(order_id: str) -> Order:
    await asyncio.sleep(0)
    return Order(order_id=order_id, total=12.5)


def run(tool_: Tool, arguments: dict[str, Any], **options: Any) -> Observation:
    return asyncio.run(execute(tool_, arguments, idempotency_key=options.pop("key", "k"), **options))


# ----- definition ---------------------------------------------------------------------------


def test_the_argument_schema_comes_from_the_signature() -> None:
    schema = create_ticket.schema()
    assert schema["name"] == "create_ticket"
    assert schema["description"] == "Open a support ticket."
    assert schema["side_effecting"] is True
    parameters = schema["parameters"]
    assert parameters["required"] == ["title"]
    assert set(parameters["properties"]) == {"title", "priority", "due"}  # idempotency_key is the executor's
    assert parameters["properties"]["priority"]["enum"] == ["low", "high"]
    assert parameters["additionalProperties"] is False
    assert create_ticket.wants_idempotency_key and not search_docs.wants_idempotency_key


def test_the_schema_hash_is_stable_and_changes_with_the_signature() -> None:
    def search_docs(query: str, limit: int = 5) -> list[str]:
        """Search the documentation."""
        return []

    def search_docs_v2(query: str, limit: int = 10) -> list[str]:
        """Search the documentation."""
        return []

    assert tool(search_docs).schema_hash == globals()["search_docs"].schema_hash
    assert tool(name="search_docs")(search_docs_v2).schema_hash != search_docs_hash()
    assert len(search_docs_hash()) == 64


def search_docs_hash() -> str:
    return search_docs.schema_hash


class Connection:
    """Not something a model can send as an argument."""


def takes_a_connection(connection: Connection) -> None:
    return None


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (lambda x: x, "parameter 'x' has no type annotation"),
        (lambda *args: None, "ordinary named parameter"),
        ("not a function", "expected a function"),
        (lambda connection: None, "has no type annotation"),
        (takes_a_connection, "cannot be described as JSON: Unable to generate pydantic-core schema"),
    ],
)
def test_a_function_that_cannot_be_a_typed_tool_is_refused(function: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        tool(name="bad")(function)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout_s": 0}, "timeout_s"),
        ({"max_calls_per_run": -1}, "max_calls_per_run"),
        ({"cost_usd": -1}, "cost_usd"),
        ({"name": "search docs"}, "must be 1 to 64 letters"),
        ({"name": "x" * 65}, "must be 1 to 64 letters"),
    ],
)
def test_bad_limits_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tool(**options)(search_docs.fn)


# ----- registry -----------------------------------------------------------------------------


def test_the_registry_names_its_tools_and_refuses_duplicates() -> None:
    registry = ToolRegistry([search_docs, create_ticket])
    registry.register(lookup_order)
    assert registry.names() == ["create_ticket", "lookup_order", "search_docs"]
    assert [t.name for t in registry] == registry.names()
    assert "search_docs" in registry and len(registry) == 3
    assert registry.schema_hashes()["search_docs"] == search_docs.schema_hash
    with pytest.raises(ValueError, match="already registered"):
        registry.register(search_docs)
    with pytest.raises(UnknownToolError, match=r"unknown tool 'send_email'; registered tools: create_ticket, lookup"):
        registry.get("send_email")


def test_a_plain_function_registers_as_a_tool() -> None:
    def ping(host: str) -> str:
        return host

    registered = ToolRegistry().register(ping)
    assert registered.name == "ping" and not registered.side_effecting and registered.timeout_s == 30.0


# ----- validation ---------------------------------------------------------------------------


def test_arguments_are_validated_and_coerced_before_anyone_judges_them() -> None:
    assert validate_arguments(search_docs, {"query": "refunds", "limit": "3"}) == {"query": "refunds", "limit": 3}
    assert validate_arguments(create_ticket, {"title": "x", "due": "2026-01-02T03:04:05Z"}) == {
        "title": "x",
        "priority": "low",
        "due": "2026-01-02T03:04:05Z",
    }


@pytest.mark.parametrize(
    ("arguments", "loc", "kind"),
    [
        ({}, ["title"], "missing"),
        ({"title": "x", "priority": "urgent"}, ["priority"], "literal_error"),
        ({"title": "x", "assignee": "bob"}, ["assignee"], "extra_forbidden"),
        ({"title": ["not", "text"]}, ["title"], "string_type"),
        ({"title": "x", "idempotency_key": "forged"}, ["idempotency_key"], "reserved"),
    ],
)
def test_bad_arguments_raise_with_json_able_errors(arguments: dict[str, Any], loc: list[str], kind: str) -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        validate_arguments(create_ticket, arguments)
    error = caught.value
    assert error.tool == "create_ticket"
    assert [(e["loc"], e["type"]) for e in error.errors] == [(loc, kind)]
    json.dumps(error.errors)
    assert loc[0] in str(error)


def test_arguments_must_be_an_object() -> None:
    with pytest.raises(ToolArgumentsError, match="arguments must be an object, got list"):
        validate_arguments(search_docs, ["refunds"])  # type: ignore[arg-type]


# ----- execution ----------------------------------------------------------------------------


def test_a_plain_function_runs_on_a_worker_thread_with_the_idempotency_key() -> None:
    CALLS.clear()
    observation = run(create_ticket, {"title": "Refund", "due": "2026-01-02T03:04:05Z"}, key="abc")
    assert observation.ok and observation.output == {"id": "T-1", "priority": "low"}
    assert observation.cost_usd == 0.05 and observation.latency_ms > 0
    assert CALLS[0]["key"] == "abc"
    assert CALLS[0]["due"] == datetime.fromisoformat("2026-01-02T03:04:05+00:00")  # a datetime, not text
    assert CALLS[0]["thread"] != threading.main_thread().name


def test_an_async_tool_is_awaited_and_a_model_output_becomes_json() -> None:
    observation = run(lookup_order, {"order_id": "A-1"})
    assert observation.output == {"order_id": "A-1", "total": 12.5}


def test_the_idempotency_key_is_deterministic_per_run_and_step() -> None:
    key = idempotency_key("run-1", 3, "create_ticket")
    assert key == idempotency_key("run-1", "3", "create_ticket")
    assert key != idempotency_key("run-1", 4, "create_ticket")
    assert key != idempotency_key("run-2", 3, "create_ticket")
    assert len(key) == 32


def test_the_call_limit_per_run_is_enforced() -> None:
    assert run(create_ticket, {"title": "a"}, calls_so_far=1).ok
    observation = run(create_ticket, {"title": "a"}, calls_so_far=2)
    assert observation.error_type == "call_limit"
    assert "at most 2 time(s) per run" in (observation.error or "")


def test_a_raising_tool_becomes_an_observation() -> None:
    @tool
    def broken(x: int) -> int:
        raise KeyError(f"no row {x}")

    observation = run(broken, {"x": 7})
    assert (observation.ok, observation.error_type, observation.error) == (False, "KeyError", "'no row 7'")
    assert not observation.retryable


def test_a_transient_failure_is_marked_retryable() -> None:
    @tool
    def flaky() -> None:
        raise TransientToolError("503 from upstream")

    observation = run(flaky, {})
    assert observation.error_type == "TransientToolError" and observation.retryable


def test_an_async_tool_that_hangs_times_out() -> None:
    @tool(timeout_s=0.2)
    async def stuck() -> None:
        await asyncio.sleep(30)

    observation = run(stuck, {})
    assert observation.error_type == "timeout" and observation.retryable
    assert "did not finish within 0.2 s" in (observation.error or "")
    assert observation.latency_ms < 5000


def test_a_plain_tool_that_hangs_times_out() -> None:
    release = threading.Event()

    @tool(timeout_s=0.2)
    def stuck() -> None:
        release.wait(10)

    try:
        assert run(stuck, {}).error_type == "timeout"
        assert run(stuck, {}).error_type == "timeout"  # the first one still holds its thread
        assert run(search_docs, {"query": "q", "limit": 1}).output == ["q #0"]  # others are not blocked
    finally:
        release.set()


@dataclass
class Point:
    x: int
    y: int


@pytest.mark.parametrize(
    ("value", "expected"),
    [(Point(1, 2), {"x": 1, "y": 2}), ((1, 2), [1, 2]), ({1: "a"}, {"1": "a"}), (None, None)],
)
def test_outputs_are_normalised_to_json(value: Any, expected: Any) -> None:
    @tool
    def produce() -> Any:
        return value

    assert run(produce, {}).output == expected


@pytest.mark.parametrize("value", [{1, 2}, object(), b"bytes"])
def test_a_non_json_output_is_an_error_observation(value: Any) -> None:
    @tool
    def produce() -> Any:
        return value

    observation = run(produce, {})
    assert observation.error_type == "non_json_output"
    assert "not JSON-serializable" in (observation.error or "")


def test_bad_arguments_become_an_observation_without_calling_the_tool() -> None:
    CALLS.clear()
    observation = run(create_ticket, {"title": 3})
    assert observation.error_type == "invalid_arguments"
    assert observation.output["errors"][0]["loc"] == ["title"]
    assert CALLS == []
    json.dumps(observation.to_dict())
