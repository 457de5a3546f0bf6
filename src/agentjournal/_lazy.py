"""Lazy package exports (PEP 562): a package names its public objects, each module loads on first use.

So `import agentjournal.agents` (or a sandboxed tool's child process, or `agentjournal --help`)
pays only for the modules it touches. Each package also imports the same names under
TYPE_CHECKING, for type checkers; tests/test_public_api.py checks the two lists agree.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`__getattr__`, `__dir__` and `__all__` for `package`, from {module: names it exports}."""
    where = {name: module for module, names in modules.items() for name in names}
    shadowed = sorted(name for name in where if f"{package}.{name}" in modules)
    if shadowed:  # a submodule import would rebind the package attribute to the module
        raise ValueError(f"{package}: {', '.join(shadowed)} name both an export and a module")

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next access is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__, sorted(where, key=public_order)


def public_order(name: str) -> tuple[bool, bool, str]:
    """Constants, then classes, then functions, each alphabetical (as `__all__` lists them)."""
    return (not name.isupper(), not name[0].isupper(), name)
