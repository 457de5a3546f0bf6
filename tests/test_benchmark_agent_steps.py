"""The agent-steps benchmark runs (quick mode, SQLite, agentjournal), so it cannot rot unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "agent_steps.py"


def test_the_agent_steps_benchmark_runs_and_reports_every_figure(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    options = ["--quick", "--backends", "sqlite", "--systems", "agentjournal", "--json", str(figures)]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *options], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "overhead ms/step" in result.stdout and "stored / message bytes" in result.stdout
    written = orjson.loads(figures.read_bytes())
    values = written["medians"]["sqlite"]["agentjournal"]
    assert set(values) == {"overhead_ms", "first_ms", "last_ms", "ratio", "payload_ratio", "state_ms"}
    assert all(value > 0 for value in values.values())
    run = written["runs"]["sqlite"]["agentjournal"][0]
    assert run["events"] == 1 + 4 * written["steps"] + 4  # RunStarted, 4 per step, the answer's 4
    assert run["stored_bytes"] > run["message_bytes"] > 40 * 1000


def test_the_benchmark_refuses_an_unknown_system() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--systems", "crewai"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "unknown system(s): crewai" in result.stderr
