"""Tools, agents and helpers shared by the run tests (not collected: no test_ prefix)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from agentjournal.agents import Agent, Policy, RunOptions, Runtime, ScriptedModel, TransientToolError, call, tool
from agentjournal.agents.policy import seed_policy_path
from agentjournal.journal import Journal, RecordedEvent

EFFECTS: list[dict[str, Any]] = []
"""Side effects that really happened in this process (reset per test by `fresh_effects`)."""


def fresh_effects() -> None:
    EFFECTS.clear()
    FLAKY.clear()


@tool
def lookup(key: str) -> dict[str, Any]:
    """A read-only lookup."""
    return {"key": key, "value": f"value of {key}"}


@tool
def big(size: int) -> str:
    """Returns `size` bytes (for the content-addressed blob path)."""
    return "x" * size


@tool(side_effecting=True)
def send_email(recipient: str, subject: str, body: str, idempotency_key: str = "") -> dict[str, Any]:
    """A side effect de-duplicated by its idempotency key."""
    if not any(effect["key"] == idempotency_key for effect in EFFECTS):
        EFFECTS.append({"tool": "send_email", "recipient": recipient, "key": idempotency_key})
    return {"sent": True, "recipient": recipient}


@tool
def query_sql(sql: str) -> dict[str, Any]:
    EFFECTS.append({"tool": "query_sql", "sql": sql})
    return {"rows": []}


@tool(side_effecting=True)
def create_ticket(title: str, idempotency_key: str = "") -> dict[str, Any]:
    EFFECTS.append({"tool": "create_ticket", "title": title, "key": idempotency_key})
    return {"ticket": f"T-{len(EFFECTS)}"}


@tool(timeout_s=0.2)
async def hangs(seconds: float) -> str:
    """Never returns in time."""
    await asyncio.sleep(seconds)
    return "late"


@tool
def explodes(reason: str) -> str:
    raise ValueError(f"cannot: {reason}")


FLAKY: list[int] = []


@tool
def flaky(key: str) -> str:
    """Fails transiently twice, then works."""
    FLAKY.append(1)
    if len(FLAKY) < 3:
        raise TransientToolError(f"busy (try {len(FLAKY)})")
    return f"ok after {len(FLAKY)} tries"


@tool(timeout_s=5)
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


ALL_TOOLS = [lookup, big, send_email, query_sql, create_ticket, hangs, explodes, flaky, slow]


def agent(script: Any, *, policy: Policy | None = None, name: str = "tester", **options: Any) -> Agent:
    return Agent(name, "You test the runtime.", ScriptedModel(script, **options), tools=ALL_TOOLS, policy=policy)


EXTERNAL = call("send_email", recipient="partner@example.org", subject="stuck orders", body="please check")


def tester_agents() -> list[Agent]:
    """The agents the CLI tests resume runs with (`--agents agents._run_helpers:tester_agents`)."""
    return [agent(lambda request: "resumed", name="tester")]


def seed_policy() -> Policy:
    return Policy.load(seed_policy_path())


def fast_options(**overrides: Any) -> RunOptions:
    return RunOptions(**{"backoff_s": 0.01, **overrides})


def types(journal: Journal, stream_id: str) -> list[str]:
    return [event.type for event in journal.read_stream(stream_id)]


def of_type(journal: Journal, stream_id: str, kind: str) -> list[RecordedEvent]:
    return [event for event in journal.read_stream(stream_id) if event.type == kind]


def runtime(journal: Journal, *agents: Agent, **options: Any) -> Runtime:
    return Runtime(journal, agents=list(agents), options=fast_options(**options))


def walk_back(journal: Journal, event: RecordedEvent) -> Iterator[RecordedEvent]:
    while True:
        yield event
        if event.causation_id is None:
            return
        event = journal.get_event(event.causation_id)


__all__ = ["call"]
