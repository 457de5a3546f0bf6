"""Invariants: verdicts, the registry, and names or paths from the command line."""

from __future__ import annotations

from typing import ClassVar

import pytest

from agentjournal.forensics import Errored, Fails, Holds, Invariant, InvariantError, Invariants, invariant

from .agentdata import PricesInBounds


class NeedsArgument(Invariant[object]):
    name: ClassVar[str] = "needs-argument"

    def __init__(self, limit: int) -> None:
        self.limit = limit


NOT_AN_INVARIANT = 42


def test_check_turns_exceptions_and_wrong_returns_into_errors() -> None:
    @invariant("picky", register=False)
    def picky(state: int) -> Holds | Fails:
        if state < 0:
            raise ValueError("negative")
        return Holds() if state < 10 else Fails(f"{state} >= 10")

    assert picky.check(3) == Holds()
    assert picky.check(12) == Fails("12 >= 10")
    assert picky.check(-1) == Errored("ValueError: negative")

    @invariant("sloppy", register=False)
    def sloppy(state: int) -> Holds:
        return True  # type: ignore[return-value]

    assert isinstance(sloppy.check(1), Errored) and "not Holds() or Fails(message)" in str(sloppy.check(1))


def test_registry_resolves_names_and_paths() -> None:
    registry = Invariants()
    rule = registry.register(PricesInBounds())
    assert registry.resolve("prices-in-bounds") is rule
    assert registry.names() == ["prices-in-bounds"]
    from_class = registry.resolve(f"{PricesInBounds.__module__}:PricesInBounds")
    assert isinstance(from_class, PricesInBounds)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("no-such-rule", "no invariant named 'no-such-rule'"),
        ("agentjournal.nothere:Rule", "cannot import module"),
        (f"{PricesInBounds.__module__}:Nope", "has no attribute"),
        (":attr", "not of the form"),
        (f"{__name__}:NOT_AN_INVARIANT", "not an Invariant"),
        (f"{__name__}:NeedsArgument", "cannot instantiate NeedsArgument"),
    ],
)
def test_malformed_or_unknown_invariants_are_clear_errors(given: str, message: str) -> None:
    with pytest.raises(InvariantError, match=message):
        Invariants().resolve(given)


def test_an_invariant_without_a_name_is_refused() -> None:
    class Nameless(Invariant[object]):
        pass

    with pytest.raises(InvariantError, match="has no name"):
        Invariants().register(Nameless())
