"""Invariants: named rules a state holds or fails, registered by name or imported by path.

Over one stream an invariant judges an Aggregate (the stream's registered type unless it
names its own). Over the whole journal it folds its own state across streams: `initial`,
`fold` and, to read less, the event `types` it needs.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from agentjournal.journal import JournalError, RecordedEvent
from agentjournal.model import Aggregate, AggregateLoadError, import_object

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Holds:
    """The rule holds for this state."""

    def __str__(self) -> str:
        return "holds"


@dataclass(frozen=True, slots=True)
class Fails:
    """The rule fails for this state, and says why."""

    message: str

    def __str__(self) -> str:
        return f"fails: {self.message}"


@dataclass(frozen=True, slots=True)
class Errored:
    """The invariant itself raised (or returned something that is not a verdict) at this state."""

    message: str

    def __str__(self) -> str:
        return f"error: {self.message}"


Verdict = Holds | Fails
Outcome = Holds | Fails | Errored

HOLDS = Holds()


class InvariantError(JournalError, ValueError):
    """An invariant that cannot be found, imported, or used the way it was asked to be."""


class Invariant(Generic[S]):
    """A named rule. Subclass and implement `evaluate`; for journal-wide checks also `initial` and `fold`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    aggregate: ClassVar[type[Aggregate] | None] = None
    """The Aggregate a stream is folded into for this rule (None: the stream's registered type)."""
    types: ClassVar[tuple[str, ...] | None] = None
    """Event types the journal-wide fold reads (None: all); the others are never fetched."""
    window: ClassVar[int | None] = None
    """When set, the journal-wide state at a position is the fold of only the last `window` relevant
    events at or before it: a rule about recent behaviour ("the tool's latest answer is in bounds").
    Bisect then rebuilds each probe from a short backward read instead of folding the journal."""

    def evaluate(self, state: S) -> Verdict:
        raise NotImplementedError

    def initial(self) -> S:
        """The journal-wide state before the first event of the range."""
        raise InvariantError(
            f"invariant {self.name!r} has no journal-wide fold: "
            "implement initial() and fold() to bisect over the journal"
        )

    def fold(self, state: S, event: RecordedEvent) -> S:
        """Fold one event into the journal-wide state (may mutate and return `state`)."""
        raise InvariantError(f"invariant {self.name!r} has no journal-wide fold: implement fold()")

    @property
    def journal_wide(self) -> bool:
        """Whether this invariant folds its own state across streams (so it can bisect the journal)."""
        return type(self).initial is not Invariant.initial and type(self).fold is not Invariant.fold

    def relevant(self, event: RecordedEvent) -> bool:
        """Whether the journal-wide fold uses this event of one of `types` (default: all of them)."""
        return True

    def copy(self, state: S) -> S:
        """An independent copy of a journal-wide state, kept as a checkpoint during bisect."""
        return copy.deepcopy(state)

    def check(self, state: S) -> Outcome:
        """`evaluate`, with an exception (or a wrong return type) reported as Errored, never raised."""
        try:
            verdict = self.evaluate(state)
        except Exception as exc:
            return Errored(f"{type(exc).__name__}: {exc}")
        if not isinstance(verdict, Holds | Fails):
            return Errored(f"evaluate returned {verdict!r}, not Holds() or Fails(message)")
        return verdict

    def __repr__(self) -> str:
        return f"<Invariant {self.name!r}>"


class FunctionInvariant(Invariant[Any]):
    """An invariant made from a function (see `invariant`)."""

    def __init__(
        self,
        name: str,
        description: str,
        evaluate: Callable[[Any], Verdict],
        *,
        aggregate: type[Aggregate] | None = None,
    ) -> None:
        self._evaluate = evaluate
        self.name = name  # type: ignore[misc]
        self.description = description  # type: ignore[misc]
        self.aggregate = aggregate  # type: ignore[misc]

    def evaluate(self, state: Any) -> Verdict:
        return self._evaluate(state)


def invariant(
    name: str, description: str = "", *, aggregate: type[Aggregate] | None = None, register: bool = True
) -> Callable[[Callable[[Any], Verdict]], FunctionInvariant]:
    """Decorator: a function `state -> Holds() | Fails(message)` becomes a registered invariant."""

    def decorate(evaluate: Callable[[Any], Verdict]) -> FunctionInvariant:
        made = FunctionInvariant(name, description or (evaluate.__doc__ or "").strip(), evaluate, aggregate=aggregate)
        if register:
            invariants.register(made)
        return made

    return decorate


class Invariants:
    """Invariants by name; `invariants` is the default registry the CLI consults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, Invariant[Any]] = {}

    def register(self, rule: Invariant[Any]) -> Invariant[Any]:
        if not isinstance(rule, Invariant):
            raise InvariantError(f"expected an Invariant, got {rule!r}")
        if not rule.name:
            raise InvariantError(f"{type(rule).__name__} has no name; set `name`")
        with self._lock:
            self._by_name[rule.name] = rule
        return rule

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._by_name)

    def resolve(self, name_or_path: str) -> Invariant[Any]:
        """A registered name, or `package.module:attr` naming an Invariant instance or subclass."""
        with self._lock:
            found = self._by_name.get(name_or_path)
        if found is not None:
            return found
        if ":" not in name_or_path:
            known = ", ".join(self.names()) or "none registered"
            raise InvariantError(
                f"no invariant named {name_or_path!r} (registered: {known}); "
                "or give a path of the form package.module:attr"
            )
        try:
            target = import_object(name_or_path, "invariant")
        except AggregateLoadError as exc:
            raise InvariantError(str(exc)) from None
        if isinstance(target, type) and issubclass(target, Invariant):
            cls = target
            try:
                target = cls()
            except TypeError as exc:
                raise InvariantError(f"invariant {name_or_path!r}: cannot instantiate {cls.__name__} ({exc})") from None
        if not isinstance(target, Invariant):
            raise InvariantError(f"invariant {name_or_path!r} is {target!r}, not an Invariant")
        return target


invariants = Invariants()
