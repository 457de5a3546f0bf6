"""Shared by the evaluator's tests: a production journal with runs, an evaluation journal, and scripted
candidate models that play a dataset's recorded runs again (changed where a test wants a change)."""

from __future__ import annotations

import dataclasses
import inspect
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from agentjournal.agents.agent import Agent
from agentjournal.agents.demo import run_demo
from agentjournal.agents.models.scripted import ScriptedModel
from agentjournal.agents.policy import Policy
from agentjournal.agents.tools import Tool
from agentjournal.journal import Journal
from agentjournal.testing import databases, synthetic


def write_demo(journal: Journal) -> None:
    """The demo's two runs (a refund with a handoff; an ops incident with a plan, a denial and an approval)."""
    run_demo(journal, Console(file=io.StringIO(), width=120))


@contextmanager
def evaluation_journal(production_url: str, tmp_path: Any) -> Iterator[Journal]:
    """A second journal on the same backend as `production_url`, for the evaluation."""
    if production_url.startswith("sqlite"):
        with Journal.open(f"sqlite:///{tmp_path / 'evals.db'}", create=True) as journal:
            yield journal
        return
    with databases.postgres_schema() as url, Journal.open(url, create=True) as journal:
        yield journal


def synthetic_crew(model: ScriptedModel, tools: list[Tool] | None = None, policy: Policy | None = None) -> list[Agent]:
    """The agent code of testing.synthetic's runs (its crew), on `model`."""
    crew = []
    everyone = (*synthetic.AGENTS, synthetic.HUMAN)
    for name in everyone:
        handoffs = [other for other in everyone if other != name] if name != synthetic.HUMAN else []
        instructions = f"You are the {name}. Resolve the request within policy."
        crew.append(
            Agent(
                name,
                instructions,
                model,
                tools if tools is not None else synthetic.TOOLS,
                policy=policy or synthetic.SYNTHETIC_POLICY,
                handoffs=handoffs,
            )
        )
    return crew


def counting(tools: list[Tool], calls: list[str]) -> list[Tool]:
    """The same tools, each appending its name to `calls` when it really runs."""

    def wrap(tool: Tool) -> Tool:
        def run(**arguments: Any) -> Any:
            calls.append(tool.name)
            return tool.fn(**arguments)

        run.__signature__ = inspect.signature(tool.fn)  # type: ignore[attr-defined]
        return dataclasses.replace(tool, fn=run)

    return [wrap(tool) for tool in tools]
