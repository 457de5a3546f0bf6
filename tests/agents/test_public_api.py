"""The agents package's public API is curated: sorted (constants, classes, functions), every name importable."""

from __future__ import annotations

from agentjournal import agents
from agentjournal.agents import models


def test_the_public_names_are_sorted_and_importable() -> None:
    for package in (agents, models):
        names = package.__all__
        assert names == sorted(names, key=lambda name: (not name.isupper(), not name[0].isupper(), name))
        for name in names:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
