"""The start-up benchmark: what a command or an import costs before it does anything.

Each figure is the median wall time of a fresh process over `--repeat` runs, every ratio against
the floor measured in the same run (a bare `python -I -c pass`):

- `agentjournal --help` (target: under 0.25 s): the CLI loads its commands, not the library;
- `import agentjournal.agents`: the package alone (its names load on first use);
- `from agentjournal.agents import Runtime`: what an agent program pays to start a run;
- `import agentjournal.cli.main` with every command module.

    .venv/bin/python benchmarks/startup.py
    .venv/bin/python benchmarks/startup.py --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()
if not console.is_terminal:
    console.width = 120

HELP_TARGET_S = 0.25
PYTHON = sys.executable
AGENTJOURNAL = str(Path(PYTHON).with_name("agentjournal"))
CASES: list[tuple[str, list[str]]] = [
    ("floor: python -I -c pass", [PYTHON, "-I", "-c", "pass"]),
    ("agentjournal --help", [AGENTJOURNAL, "--help"]),
    ("import agentjournal.agents", [PYTHON, "-I", "-c", "import agentjournal.agents"]),
    ("from agentjournal.agents import Runtime", [PYTHON, "-I", "-c", "from agentjournal.agents import Runtime"]),
    ("import agentjournal.cli.main", [PYTHON, "-I", "-c", "import agentjournal.cli.main"]),
]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 runs each instead of --repeat")
    parser.add_argument("--repeat", type=int, default=30, help="runs per command (default 30)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(argv)
    repeat = 5 if options.quick else options.repeat
    samples: dict[str, list[float]] = {name: [] for name, _ in CASES}
    for _ in range(repeat):  # interleaved, so a noisy moment hits every command alike
        for name, command in CASES:
            samples[name].append(timed(command))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    floor = medians[CASES[0][0]]
    table = Table("process", "median (s)", "min (s)", "max (s)", "x floor", title="start-up")
    for name, values in samples.items():
        table.add_row(
            name, f"{medians[name]:.3f}", f"{min(values):.3f}", f"{max(values):.3f}", f"{medians[name] / floor:.1f}"
        )
    console.print(table)
    verdict = "met" if medians["agentjournal --help"] < HELP_TARGET_S else "missed"
    console.print(f"{repeat} runs each; target: agentjournal --help under {HELP_TARGET_S} s ({verdict})")
    if options.json:
        options.json.write_text(json.dumps({"repeat": repeat, "median_s": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
