"""Plain-language explanations of a thread's events (`langgraph-<thread_id>`): which node wrote what, which
checkpoint changed which channels. Register them on a registry (nothing is registered by importing this):

    from agentjournal.forensics import explainers
    from agentjournal.integrations.langgraph.explain import register_langgraph_explainers

    register_langgraph_explainers(explainers)
"""

from __future__ import annotations

from typing import Any

from agentjournal.integrations.langgraph._codec import mark
from agentjournal.integrations.langgraph._thread import (
    CHECKPOINT_SAVED,
    RUNS_DELETED,
    THREAD_COPIED,
    THREAD_DELETED,
    THREAD_PRUNED,
    WRITES_SAVED,
)
from agentjournal.journal import RecordedEvent
from agentjournal.model.explainers import Explainers, Explanation

__all__ = ["register_langgraph_explainers"]

_HOW = {"+": "grew", "+w": "grew by the writes", "w": "set by a write", "e": "emptied", None: "set"}


def _checkpoint(event: RecordedEvent) -> Explanation:
    d = event.data
    metadata: dict[str, Any] = d.get("m") or {}
    where = f" in {d['ns']}" if d.get("ns") else ""
    step = metadata.get("step")
    title = f"Checkpoint saved{where}" + (f" at step {step}" if step is not None else "")
    changed = [f"{channel} {_HOW[mark(entry)]}" for channel, entry in sorted((d.get("c") or {}).items())]
    summary = "; ".join(changed) if changed else "no channel changed"
    tags = {"checkpoint_id": str(d["id"])}
    if metadata.get("source"):
        tags["source"] = str(metadata["source"])
    if d.get("run"):
        summary += f"; starts run {d['run']}"
        tags["run"] = str(d["run"])
    return Explanation(title, summary, tags)


def _writes(event: RecordedEvent) -> Explanation:
    d = event.data
    path = [part.strip() for part in str(d.get("path", "")).split(",")]
    node = path[1] if len(path) > 1 else "a task"
    channels = ", ".join(dict.fromkeys(str(item[0]) for item in d["w"]))
    checkpoint = d["cp"] if isinstance(d["cp"], str) else f"the checkpoint at v{d['cp']}"
    return Explanation(
        f"Node {node} wrote {channels}",
        f"{len(d['w'])} write(s) of task {d['task']}, pending on {checkpoint}",
        {"task": str(d["task"]), "node": node},
    )


def _deleted(event: RecordedEvent) -> Explanation:
    return Explanation(
        "Thread deleted",
        "every earlier checkpoint and write is hidden from the saver's reads; the events stay in the journal",
        {},
    )


def _copied(event: RecordedEvent) -> Explanation:
    d = event.data
    return Explanation(
        f"Thread copied from {d['from']}",
        f"starts with that thread's events up to v{d['through']}",
        {"from": d["from"]},
    )


def _pruned(event: RecordedEvent) -> Explanation:
    kept = event.data.get("keep") or []
    return Explanation(
        "Thread pruned", f"reads see only {len(kept)} checkpoint(s), the newest of each namespace; the rest stay", {}
    )


def _runs_deleted(event: RecordedEvent) -> Explanation:
    runs = event.data["runs"]
    return Explanation("Runs' checkpoints hidden", f"checkpoints of run(s) {', '.join(runs)} are hidden from reads", {})


def register_langgraph_explainers(registry: Explainers) -> None:
    """Explain the events JournalSaver writes on a thread's stream."""
    registry.register(CHECKPOINT_SAVED, _checkpoint)
    registry.register(WRITES_SAVED, _writes)
    registry.register(THREAD_DELETED, _deleted)
    registry.register(THREAD_COPIED, _copied)
    registry.register(THREAD_PRUNED, _pruned)
    registry.register(RUNS_DELETED, _runs_deleted)
