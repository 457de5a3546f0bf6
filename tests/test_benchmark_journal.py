"""The journal benchmark runs (quick mode, SQLite), so it cannot rot unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]


def test_the_journal_benchmark_runs_and_reports_every_figure(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    options = ["--quick", "--backends", "sqlite", "--repeat", "2", "--json", str(figures), "--profile"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "journal.py"), *options],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "single append p50 (µs)" in result.stdout
    assert "aj / raw" in result.stdout
    for workload in ("single appends", "batch appends", "read the stream", "read_all"):
        assert f"sqlite · {workload} ·" in result.stdout  # the profile of each workload
    medians = orjson.loads(figures.read_bytes())["medians"]["sqlite"]
    assert set(medians) == {"agentjournal", "eventsourcing", "raw"}
    for system, values in medians.items():
        assert set(values) == {"single_p50_us", "single_p99_us", "batch_eps", "stream_ms", "read_all_eps"}, system
        assert all(value > 0 for value in values.values()), system
    assert len(orjson.loads(figures.read_bytes())["runs"]["sqlite"]["raw"]["batch_eps"]) == 2


def test_the_benchmark_refuses_an_unknown_backend() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "journal.py"), "--backends", "oracle"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown backend(s) ['oracle']" in result.stderr
