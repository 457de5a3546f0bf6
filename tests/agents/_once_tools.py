"""The agent of the acts-once test: an approved, side-effecting call that takes 0.5 s and counts itself.

Imported by the test and by the worker processes it starts (`--agents agents._once_tools:agents`).
"""

from __future__ import annotations

import os
import time
from typing import Any

from agentjournal.agents import Agent, Policy, ScriptedModel, call, tool

COUNTER_ENV = "AGENTJOURNAL_ONCE_FILE"

POLICY = Policy.from_yaml(
    """
version: 1
rules:
  - name: charges_need_a_human
    when: {tool: charge}
    action: require_human_approval
""",
    source="once-policy",
)


@tool(side_effecting=True, timeout_s=10)
def charge(order_id: str, idempotency_key: str = "") -> dict[str, Any]:
    """Charge an order: appends one line per execution to the counter file, then takes 0.5 s."""
    with open(os.environ[COUNTER_ENV], "a", encoding="utf-8") as counter:
        counter.write(f"{order_id} {idempotency_key} {os.getpid()}\n")
    time.sleep(0.5)
    return {"charged": order_id}


def agents() -> list[Agent]:
    model = ScriptedModel(
        lambda request: (
            call("charge", order_id=request.messages[0]["content"]) if len(request.messages) == 1 else "charged"
        )
    )
    return [Agent("charger", "You charge orders.", model, tools=[charge], policy=POLICY)]
