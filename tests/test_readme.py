"""The README is short and its example is a test: the two set-up commands come first, every ```python
block runs in its own empty folder (the helpers of tests/test_docs.py), and it links to every page of the
documentation site, where the long sections live.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from test_docs import NAV, ROOT, Block, block_params, python_blocks, run_block

README = ROOT / "README.md"
TEXT = README.read_text()
BLOCKS = python_blocks(README)


def test_the_readme_has_one_first_example() -> None:
    """More examples belong on the site's pages (docs/), where they are tested the same way."""
    assert len(BLOCKS) == 1


@pytest.mark.parametrize("block", block_params(BLOCKS))
def test_python_example_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_block(block, tmp_path, monkeypatch)


def test_the_two_setup_commands_come_first() -> None:
    first_block = re.search(r"```bash\n(.*?)```", TEXT, re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]


def test_the_readme_links_to_every_top_level_page_of_the_site() -> None:
    """Every page, or for a section in its own folder (integrations/) that section's index."""
    linked = set(re.findall(r"\]\(docs/([\w/-]+\.md)\)", TEXT))
    top = [page for page in NAV if page != "index.md" and ("/" not in page or page.endswith("/index.md"))]
    missing = [page for page in top if page not in linked]
    assert not missing, f"README.md does not link to these docs pages: {missing}"


def test_every_relative_link_in_the_readme_exists() -> None:
    targets = [target for target in re.findall(r"\]\(([^)#\s]+)", TEXT) if "://" not in target]
    assert targets
    broken = [target for target in targets if not (ROOT / target).exists()]
    assert not broken, f"README.md links to missing files: {broken}"
