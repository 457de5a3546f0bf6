"""The projections benchmark runs (quick mode, SQLite), so it cannot rot unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "projections.py"


@pytest.mark.slow
def test_the_projections_benchmark_reports_rebuild_throughput_and_lag(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--backends", "sqlite", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "rebuild (events/s)" in result.stdout and "lag p95 (ms)" in result.stdout
    sqlite = orjson.loads(figures.read_bytes())["figures"]["sqlite"]
    assert sqlite["events"] >= 20_000
    assert sqlite["rebuild_eps"] > 0 and 0 < sqlite["lag_p50_ms"] <= sqlite["lag_p95_ms"]
    assert sqlite["lag_events"] >= 300  # every appended event was seen by the follower


def test_the_benchmark_refuses_bad_options() -> None:
    for options, message in (
        (["--backends", "oracle"], "unknown backend(s) oracle"),
        (["--events", "5"], "at least 1000"),
    ):
        result = subprocess.run(
            [sys.executable, str(SCRIPT), *options], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 2 and message in result.stderr
