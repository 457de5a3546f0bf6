"""What recording a hand-written Anthropic tool-use loop costs per step, next to the same loop unrecorded.

The loop is seed 002's refund conversation (lookup_order, check_refund_policy, issue_refund, then the
answer: four model calls, three tool calls). The real `anthropic` SDK client talks to a local HTTP
server on 127.0.0.1 (tests/agents/_fake_providers.py) that answers like the Messages API, so the
SDK's request building, HTTP round trip and parsing are in both timings:

- plain: the SDK client, plain functions, no agentjournal;
- recorded: the same client wrapped with `record_anthropic`, the tools with `@journaled`, inside
  `RunRecorder.start(...)` under a policy, on a journal (SQLite by default: a file, WAL,
  synchronous=NORMAL, the default durability; PostgreSQL with --backends sqlite,postgres).

A step is one model call and the tool call it asks for (four per run). The two kinds take turns
within each round, and each round's figure is the mean over its runs; the table shows the medians of
the rounds, all measured in the same process and the same run of this script; `appends/step` is how
many journal appends (transactions) a recorded step makes.

    .venv/bin/python benchmarks/integration_clients.py [--rounds 7 --runs 40] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import anthropic  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from agentjournal import Journal  # noqa: E402
from agentjournal.agents import Policy  # noqa: E402
from agentjournal.integrations import RunRecorder, journaled, record_anthropic  # noqa: E402
from agents._fake_providers import anthropic_reply, anthropic_tool_use, serving  # noqa: E402

MODEL = "claude-haiku-4-5"
QUESTION = "I want a refund for order ORD-5521"
ANSWER = "I have issued a partial refund of $44.99 for order ORD-5521 (refund REF-3301)."
STEPS = 4
POLICY = Policy.from_yaml(
    """
version: 1
rules:
  - name: no_deletes
    when: {tool: delete_order}
    action: deny
  - name: refunds_up_to_100
    when: {tool: issue_refund, input: {amount_gt: 100}}
    action: deny
""",
    source="benchmark-policy",
)
ORDERS = {"ORD-5521": {"status": "delivered", "amount": 89.99, "items": ["running shoes"]}}


def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order by id."""
    return {"order_id": order_id, **ORDERS[order_id]}


def check_refund_policy(order_id: str, reason: str) -> dict[str, Any]:
    """What refund the policy allows for an order."""
    return {"eligible": True, "max_refund": round(ORDERS[order_id]["amount"] / 2, 2), "type": "partial"}


def issue_refund(order_id: str, amount: float, idempotency_key: str = "") -> dict[str, Any]:
    """Issue a refund."""
    return {"refund_id": "REF-3301", "status": "processed", "amount": amount}


PLAIN_TOOLS: dict[str, Callable[..., Any]] = {f.__name__: f for f in (lookup_order, check_refund_policy, issue_refund)}
JOURNALED = {
    "lookup_order": journaled(lookup_order),
    "check_refund_policy": journaled(check_refund_policy),
    "issue_refund": journaled(side_effecting=True)(issue_refund),
}
TOOL_SPECS = [tool.anthropic_tool for tool in JOURNALED.values()]


def script(body: dict[str, Any]) -> dict[str, Any]:
    """The server's answer: the next step of the conversation, from how many tool results it holds."""
    done = sum(1 for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], list))
    steps = [
        ("lookup_order", {"order_id": "ORD-5521"}),
        ("check_refund_policy", {"order_id": "ORD-5521", "reason": "customer_request"}),
        ("issue_refund", {"order_id": "ORD-5521", "amount": 44.99}),
    ]
    if done < len(steps):
        return anthropic_tool_use(*steps[done], call_id=f"toolu_{done + 1}")
    return anthropic_reply([{"type": "text", "text": ANSWER}])


def loop(client: Any, tools: dict[str, Callable[..., Any]]) -> str:
    """The hand-written loop; the same code runs recorded and unrecorded."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    while True:
        reply = client.messages.create(model=MODEL, max_tokens=1024, tools=TOOL_SPECS, messages=messages)
        messages.append({"role": "assistant", "content": reply.content})
        if reply.stop_reason != "tool_use":
            return "".join(block.text for block in reply.content if block.type == "text")
        results = [
            {"type": "tool_result", "tool_use_id": b.id, "content": json.dumps(tools[b.name](**b.input))}
            for b in reply.content
            if b.type == "tool_use"
        ]
        messages.append({"role": "user", "content": results})


def plain_run(client: anthropic.Anthropic) -> None:
    assert loop(client, PLAIN_TOOLS) == ANSWER


def recorded_run(client: anthropic.Anthropic, recorder: RunRecorder) -> str:
    with recorder.start(agent="refund-agent", input=QUESTION, model=MODEL, tools=TOOL_SPECS) as run:
        answer = loop(client, JOURNALED)  # type: ignore[arg-type]
        run.complete(answer)
    assert run.state.status == "completed" and run.state.metrics.model_calls == STEPS
    return run.stream_id


def appends_per_step(journal: Journal, stream_id: str) -> float:
    """The transactions a step took: the events of one append share its time, so count the times."""
    return len({event.recorded_at for event in journal.read_stream(stream_id)}) / STEPS


@contextmanager
def journal_at(backend: str) -> Iterator[Journal]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="integration-clients-") as folder:
            url = f"sqlite:///{Path(folder) / 'bench.db'}"
            with Journal.open(url, create=True) as journal:
                yield journal
        return
    from agentjournal.testing import databases

    with databases.postgres_schema() as url, Journal.open(url, create=True) as journal:
        yield journal


def measure(backend: str, rounds: int, runs: int) -> dict[str, float]:
    plain_rounds: list[float] = []
    recorded_rounds: list[float] = []
    with serving(script) as server, journal_at(backend) as journal:
        client = anthropic.Anthropic(api_key="bench", base_url=server.url, max_retries=0)
        wrapped = record_anthropic(anthropic.Anthropic(api_key="bench", base_url=server.url, max_retries=0))
        recorder = RunRecorder(journal, policy=POLICY)
        for _ in range(3):  # warm up: connections, imports, the journal's statements
            plain_run(client)
            recorded_run(wrapped, recorder)
        for _ in range(rounds):
            plain_total = recorded_total = 0.0
            for _ in range(runs):
                started = time.perf_counter()
                plain_run(client)
                plain_total += time.perf_counter() - started
                started = time.perf_counter()
                stream_id = recorded_run(wrapped, recorder)
                recorded_total += time.perf_counter() - started
            plain_rounds.append(plain_total * 1000 / (runs * STEPS))
            recorded_rounds.append(recorded_total * 1000 / (runs * STEPS))
        client.close()
        wrapped.close()
        appends = appends_per_step(journal, stream_id)
        assert journal.verify().ok
    plain = statistics.median(plain_rounds)
    recorded = statistics.median(recorded_rounds)
    overheads = [r - p for p, r in zip(plain_rounds, recorded_rounds, strict=True)]
    return {
        "plain_ms": plain,
        "recorded_ms": recorded,
        "overhead_ms": statistics.median(overheads),
        "appends_per_step": appends,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=40, help="recorded and plain runs per round")
    parser.add_argument("--backends", default="sqlite", help="comma-separated: sqlite, postgres")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds of 3 runs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()
    rounds, runs = (2, 3) if options.quick else (options.rounds, options.runs)
    figures = {backend: measure(backend, rounds, runs) for backend in options.backends.split(",")}
    table = Table(title=f"Anthropic tool-use loop, ms per step (medians of {rounds} rounds x {runs} runs)")
    columns = ("backend", "plain loop", "recorded loop", "overhead ms/step", "recorded / plain", "appends/step")
    for column in columns:
        table.add_column(column, justify="right" if column != "backend" else "left")
    for backend, values in figures.items():
        ratio = values["recorded_ms"] / values["plain_ms"]
        table.add_row(
            backend,
            f"{values['plain_ms']:.3f}",
            f"{values['recorded_ms']:.3f}",
            f"{values['overhead_ms']:.3f}",
            f"{ratio:.2f}x",
            f"{values['appends_per_step']:.2f}",
        )
    console = Console()
    if not console.is_terminal:
        console.width = 120  # a file or a pipe gets every column
    console.print(table)
    if options.json:
        options.json.write_text(json.dumps({"rounds": rounds, "runs": runs, "steps": STEPS, "medians": figures}))


if __name__ == "__main__":
    main()
