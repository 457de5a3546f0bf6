"""The agent-steps benchmark's LangGraph systems run (quick mode, SQLite): LangGraph's SqliteSaver, JournalSaver
and the graph with no checkpointer, the same graph in the same run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytest.importorskip("langgraph.checkpoint.sqlite")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "agent_steps.py"


def test_the_benchmark_measures_journalsaver_next_to_langgraphs_own_saver(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    systems = "langgraph,langgraph+agentjournal,langgraph-bare"
    options = ["--quick", "--backends", "sqlite", "--systems", systems, "--json", str(figures)]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *options], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    written = orjson.loads(figures.read_bytes())
    medians = written["medians"]["sqlite"]
    ours, theirs, bare = medians["langgraph+agentjournal"], medians["langgraph"], medians["langgraph-bare"]
    assert set(ours) == {"overhead_ms", "first_ms", "last_ms", "ratio", "payload_ratio", "state_ms"}
    assert set(bare) == {"overhead_ms", "first_ms", "last_ms"}
    assert ours["payload_ratio"] <= 1.5  # each message stored once
    assert ours["ratio"] < theirs["ratio"] / 4  # LangGraph's saver stores the conversation at every step
    run = written["runs"]["sqlite"]["langgraph+agentjournal"][0]
    steps = written["steps"]
    # thread: input, the first loop checkpoint, a checkpoint and a write per step, the start task's write;
    # run: RunStarted, ResponseDrafted, ResponseFinalized, RunCompleted (the graph writes no chat messages)
    assert run["events"] == (steps + 2) + (steps + 1) + 4
    assert {"sync_overhead_ms", "sync_first_ms", "sync_last_ms"} <= set(run)
