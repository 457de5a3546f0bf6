"""The README's examples are tests: every ```python block runs, each in its own empty folder.

Blocks must be self-contained; use another fence (```text, ```pycon) for code that must not run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agentjournal.cli import journal_commands
from agentjournal.cli.app import app

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()


def _python_blocks() -> list[tuple[str, str, int]]:
    """(nearest heading, code, line number) of each python block."""
    blocks = []
    heading = "top"
    lines = TEXT.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.strip() == "```python":
            start = index + 1
            end = lines.index("```", start)
            blocks.append((heading, "\n".join(lines[start:end]), start + 1))
            index = end
        index += 1
    return blocks


BLOCKS = _python_blocks()


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize(
    ("code", "line"),
    [pytest.param(code, line, id=f"{heading}:{line}") for heading, code, line in BLOCKS],
)
def test_python_example_runs(code: str, line: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "readme_example"})


def test_the_two_setup_commands_come_first() -> None:
    first_block = re.search(r"```bash\n(.*?)```", TEXT, re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]


def test_every_journal_command_is_in_the_readme() -> None:
    names = [
        command.name or (command.callback.__name__ if command.callback else "")
        for command in app.registered_commands
        if command.callback is not None and command.callback.__module__ == journal_commands.__name__
    ]
    assert len(names) == 8
    missing = [name for name in names if not re.search(rf"agentjournal (--db \S+ )?{name}\b", TEXT)]
    assert not missing, f"journal commands not shown in README.md: {missing}"


def test_the_forensics_shell_examples_work_on_the_python_examples_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, invoke: Any
) -> None:
    """`state run-2 --at 31` as printed: run-2 is the example's own stream, not a run of the contract."""
    [(code, line)] = [(code, line) for _, code, line in BLOCKS if "PriceQuoted" in code]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "readme_example"})
    url = f"sqlite:///{tmp_path / 'forensics.db'}"
    state = invoke(url, "state", "run-2", "--at", "31")
    assert state.exit_code == 0, state.output
    assert "run-2 at version 31 (StreamSummary)" in state.output and "-1.0" in state.output
    explained = invoke(url, "explain", "run-2", "--from", "28", "--to", "32")
    assert explained.exit_code == 0 and "None" not in explained.output
