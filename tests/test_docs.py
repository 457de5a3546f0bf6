"""The documentation site is a test: it builds with `mkdocs build --strict` (any warning fails: a broken
link, a missing page, a page left out of the navigation) and every ```python block of every page runs,
each in its own empty folder. tests/test_readme.py runs the README's blocks with the same helpers.

Blocks must be self-contained; fence code that must not run as ```text or ```bash.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentjournal.cli import journal_commands
from agentjournal.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FORENSICS_COMMANDS = ("state", "explain", "bisect", "regrade", "lineage", "whatif", "audit", "invariants")


@dataclass(frozen=True)
class Block:
    """One fenced ```python block of a Markdown file."""

    path: Path
    heading: str
    line: int
    """The line of the block's first line of code (1-based), so a traceback points into the page."""
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def python_blocks(path: Path) -> list[Block]:
    """Every ```python block of `path`, with the nearest heading above it (headings inside fences don't count)."""
    blocks = []
    heading = "top"
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = re.match(r"^(`{3,})\s*(\w*)", line)
        if fence:
            close = next(
                (end for end in range(index + 1, len(lines)) if lines[end].strip() == fence.group(1)),
                None,
            )
            assert close is not None, f"{path.relative_to(ROOT)}:{index + 1}: a code fence that never closes"
            if fence.group(2) == "python":
                blocks.append(Block(path, heading, index + 2, "\n".join(lines[index + 1 : close])))
            index = close + 1
            continue
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        index += 1
    return blocks


def block_params(blocks: list[Block]) -> list[Any]:
    return [pytest.param(block, id=f"{block.path.name}:{block.line}:{block.heading}") for block in blocks]


def run_block(block: Block, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the block as a script would, in `folder` (each example gets an empty one)."""
    monkeypatch.chdir(folder)
    exec(compile(block.code, block.where, "exec"), {"__name__": "docs_example"})


def nav_pages(nav: Any) -> Iterator[str]:
    """The page files named in mkdocs.yml's nav, however deep."""
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from nav_pages(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from nav_pages(value)


CONFIG = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
NAV = list(nav_pages(CONFIG["nav"]))
BLOCKS = [block for page in PAGES for block in python_blocks(page)]


def test_the_site_builds_with_no_warning(tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    warnings = [line for line in built.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert not warnings, warnings
    for page in NAV:
        stem = page.removesuffix(".md")
        html = f"{stem}.html" if stem.endswith("index") else f"{stem}/index.html"
        assert (site / html).is_file(), f"{page} was not built"


def test_every_page_is_in_the_navigation_and_every_entry_is_a_page() -> None:
    assert sorted(NAV) == [page.relative_to(DOCS).as_posix() for page in PAGES]


def test_the_pages_have_python_examples() -> None:
    pages = {block.path.name for block in BLOCKS}
    assert {"getting-started.md", "journal.md", "runtime.md", "policies.md", "forensics.md", "read-side.md"} <= pages
    assert len(BLOCKS) >= 9


@pytest.mark.parametrize("block", block_params(BLOCKS))
def test_python_example_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_block(block, tmp_path, monkeypatch)


def test_every_journal_command_is_shown_on_the_journal_page() -> None:
    text = (DOCS / "journal.md").read_text()
    names = [
        command.name or (command.callback.__name__ if command.callback else "")
        for command in app.registered_commands
        if command.callback is not None and command.callback.__module__ == journal_commands.__name__
    ]
    assert len(names) == 8
    missing = [name for name in names if not re.search(rf"agentjournal (--db \S+ )?{name}\b", text)]
    assert not missing, f"journal commands not shown in docs/journal.md: {missing}"


def test_every_url_parameter_is_documented_on_the_journal_page() -> None:
    from agentjournal.journal.urls import PARAMETERS

    text = (DOCS / "journal.md").read_text()
    documented = set(re.findall(r"^\| [^|]+ \| `(\w+)` \|", text, re.MULTILINE))
    known = {name for parameters in PARAMETERS.values() for name in parameters}
    assert known - documented == set(), "URL parameters missing from docs/journal.md's table"
    assert documented - known == set(), "docs/journal.md documents URL parameters no backend takes"


def test_every_forensics_command_is_shown_on_the_forensics_page() -> None:
    text = (DOCS / "forensics.md").read_text()
    missing = [command for command in FORENSICS_COMMANDS if f"agentjournal {command}" not in text]
    assert not missing, f"forensics commands not shown in docs/forensics.md: {missing}"


def test_the_forensics_shell_examples_work_on_the_python_examples_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, invoke: Any
) -> None:
    """`state run-2 --at 31` as printed: run-2 is the example's own stream, not a run of the contract."""
    [block] = [block for block in BLOCKS if block.path.name == "forensics.md" and "PriceQuoted" in block.code]
    run_block(block, tmp_path, monkeypatch)
    url = f"sqlite:///{tmp_path / 'forensics.db'}"
    state = invoke(url, "state", "run-2", "--at", "31")
    assert state.exit_code == 0, state.output
    assert "run-2 at version 31 (StreamSummary)" in state.output and "-1.0" in state.output
    explained = invoke(url, "explain", "run-2", "--from", "28", "--to", "32")
    assert explained.exit_code == 0 and "None" not in explained.output
