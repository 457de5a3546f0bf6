"""Every package's public API is curated and lazy: sorted (constants, classes, functions), every name importable,
the type checker's view (the TYPE_CHECKING imports) the same as what loads, and importing a package cheap."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import agentjournal
from agentjournal._lazy import public_order

LAZY = [
    "agentjournal",
    "agentjournal.agents",
    "agentjournal.agents.models",
    "agentjournal.api",
    "agentjournal.evals",
    "agentjournal.journal",
    "agentjournal.messaging",
    "agentjournal.model",
    "agentjournal.projections",
    "agentjournal.runs",
]
EAGER = ["agentjournal.forensics"]
SRC = Path(agentjournal.__file__).parent


def _type_checking_names(package: str) -> list[str]:
    init = SRC.joinpath(*package.split(".")[1:], "__init__.py")
    names = []
    for node in ast.walk(ast.parse(init.read_text())):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            names += [
                alias.asname or alias.name
                for stmt in node.body
                if isinstance(stmt, ast.ImportFrom)
                for alias in stmt.names
            ]
    return names


@pytest.mark.parametrize("package", LAZY + EAGER)
def test_the_public_names_are_sorted_and_importable(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert names == sorted(names, key=public_order)
    for name in names:
        assert getattr(module, name) is not None, f"{package}.{name}"


@pytest.mark.parametrize("package", LAZY)
def test_the_type_checkers_view_is_what_loads(package: str) -> None:
    assert sorted(_type_checking_names(package), key=public_order) == importlib.import_module(package).__all__


def test_importing_a_package_loads_none_of_its_modules() -> None:
    code = (
        "import sys, agentjournal.agents, agentjournal.journal\n"
        "print(sorted(m for m in sys.modules if m.startswith(('agentjournal.', 'pydantic'))))"
    )
    loaded = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(loaded) == ["agentjournal._lazy", "agentjournal.agents", "agentjournal.journal"]
