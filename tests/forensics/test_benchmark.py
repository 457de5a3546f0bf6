"""The forensics benchmark runs in quick mode and its bisect agrees with the linear scan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_forensics_benchmark_runs_in_quick_mode() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "forensics.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    output = " ".join(result.stdout.split())
    for row in ("bisect latest-price-in-bounds", "bisect prices-in-bounds", "load_at_version, 5,000-event stream"):
        assert row in output
    assert "linear scan: 2,431 evaluations" in output  # the planted failure, found by both
