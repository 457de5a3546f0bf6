"""Bisect: the first event after which an invariant fails, over one stream or the whole journal.

Binary search needs the state at arbitrary points, each rebuilt cheaply. `Replay` folds
forward from the nearest known state (the last probe, an in-memory checkpoint taken every
few thousand events while folding, or, for a stream, a stored snapshot), reading the
journal in big pages and only the event types the fold needs. So a search reads each event
about once and evaluates the invariant O(log n) times. A journal-wide rule about recent
behaviour (`Invariant.window`) needs no fold at all: each probe reads the last few events.
"""

from __future__ import annotations

import bisect as bisect_module
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import orjson

from agentjournal.forensics.explainers import Explainers, Explanation, explainers
from agentjournal.forensics.invariants import Errored, Holds, Invariant, InvariantError, Outcome
from agentjournal.forensics.lineage import Chain, causes
from agentjournal.journal import InvalidEventError, Journal, RecordedEvent
from agentjournal.journal.envelope import canonical_json
from agentjournal.model import Aggregate, Repository
from agentjournal.model.repository import check_version
from agentjournal.runs import aggregate_for

S = TypeVar("S")

JOURNAL_PAGE = 10_000
"""Events per read while folding across the journal."""
STREAM_PAGE = 5_000

Progress = Callable[[int, int], None]
"""Called with (steps done, steps expected) as a search advances."""


@dataclass(frozen=True)
class Transition:
    """The outcome changed at this event (exhaustive mode)."""

    at: int
    event: RecordedEvent
    before: Outcome
    after: Outcome


@dataclass(frozen=True)
class FoldFailed:
    """The state after a fold that raised: every later state is this too, judged as an error."""

    at: int
    message: str


def judge(invariant: Invariant[Any], state: Any) -> Outcome:
    """The invariant's outcome on a state, or the error of the fold that should have built it."""
    if isinstance(state, FoldFailed):
        return Errored(f"folding the event at {state.at} failed: {state.message}")
    return invariant.check(state)


@dataclass
class BisectResult:
    """Where an invariant started to fail. `start`, `end` and `last_held` are versions over a stream and
    positions over the journal; `start` is the key before the first event searched."""

    invariant: str
    over: Literal["stream", "journal"]
    stream_id: str | None
    start: int
    end: int
    evaluations: int
    culprit: RecordedEvent | None = None
    outcome: Outcome | None = None
    explanation: Explanation | None = None
    last_held: int | None = None
    lineage: Chain | None = None
    confirmed: bool = False
    transitions: list[Transition] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        """True when the invariant held on every state of the range."""
        return self.culprit is None

    @property
    def unit(self) -> str:
        return "version" if self.over == "stream" else "position"


class Replay(Generic[S]):
    """The state after any key (version or position) of a range, folded forward from the nearest known state."""

    def __init__(
        self,
        *,
        start: int,
        end: int,
        initial: Callable[[], S],
        fold: Callable[[S, RecordedEvent], S],
        copy: Callable[[S], S],
        read: Callable[[int, int], list[RecordedEvent]],
        key: Callable[[RecordedEvent], int],
        checkpoint_every: int,
        stored: Callable[[int], tuple[int, S] | None] | None = None,
    ) -> None:
        self._fold, self._copy, self._read, self._key = fold, copy, read, key
        self._end = end
        self._every = checkpoint_every
        self._stored = stored
        self._checkpoint_keys: list[int] = [start]
        self._checkpoints: dict[int, S] = {start: initial()}
        self._reset(start, copy(self._checkpoints[start]))

    def _reset(self, key: int, state: S) -> None:
        self.key, self.state = key, state
        self._buffer: deque[RecordedEvent] = deque()
        self._read_upto = key
        self._exhausted = False
        self._since_checkpoint = 0

    def state_at(self, target: int) -> S:
        """The state after every event with key <= target (the state is shared: do not mutate it)."""
        self._start_near(target)
        while True:
            while self._buffer and self._key(self._buffer[0]) <= target:
                event = self._buffer.popleft()
                self._apply(event)
                self._since_checkpoint += 1
                if self._since_checkpoint >= self._every:
                    self._checkpoint(self._key(event))
            if self._buffer or not self._read_more(target):
                break
        self.key = target
        return self.state

    def _apply(self, event: RecordedEvent) -> None:
        if isinstance(self.state, FoldFailed):
            return
        try:
            self.state = self._fold(self.state, event)
        except Exception as exc:
            self.state = FoldFailed(self._key(event), f"{type(exc).__name__}: {exc}")  # type: ignore[assignment]

    def _read_more(self, upto: int) -> bool:
        """Read the next page (after what was read, sized for `upto`) into the buffer; False at the end."""
        if self._exhausted or self._read_upto >= min(upto, self._end):
            return False
        page = [event for event in self._read(self._read_upto, upto) if self._key(event) <= self._end]
        if not page:
            self._exhausted = True
            return False
        self._buffer.extend(page)
        self._read_upto = self._key(page[-1])
        return True

    def _start_near(self, target: int) -> None:
        """Move to the best known state at or below `target`: the current one, a checkpoint, or a stored snapshot."""
        best = self._checkpoint_keys[bisect_module.bisect_right(self._checkpoint_keys, target) - 1]
        known = max(best, self.key) if self.key <= target else best
        if self._stored is not None and target - known > self._every:
            stored = self._stored(target)
            if stored is not None and stored[0] > known:
                self._reset(*stored)
                return
        if known != self.key or self.key > target:
            saved = self._checkpoints[best]
            self._reset(best, saved if isinstance(saved, FoldFailed) else self._copy(saved))

    def steps(self) -> Iterator[tuple[int, RecordedEvent, S]]:
        """Fold every remaining event of the range, yielding (key, event, state) after each."""
        while True:
            while self._buffer:
                event = self._buffer.popleft()
                self._apply(event)
                self.key = self._key(event)
                yield self.key, event, self.state
            if not self._read_more(self._end):
                return

    def _checkpoint(self, key: int) -> None:
        self._since_checkpoint = 0
        if key not in self._checkpoints:
            bisect_module.insort(self._checkpoint_keys, key)
            failed = isinstance(self.state, FoldFailed)
            self._checkpoints[key] = self.state if failed else self._copy(self.state)


class _Search:
    """The probing logic shared by stream and journal bisects."""

    def __init__(
        self, invariant: Invariant[Any], state_at: Callable[[int], Any], progress: Progress | None, expected: int
    ) -> None:
        self.invariant = invariant
        self.state_at = state_at
        self.progress = progress
        self.expected = expected
        self.outcomes: dict[int, Outcome] = {}
        self.errors: list[tuple[int, str]] = []

    def evaluate(self, key: int) -> Outcome:
        if key not in self.outcomes:
            outcome = judge(self.invariant, self.state_at(key))
            self.outcomes[key] = outcome
            if isinstance(outcome, Errored):
                self.errors.append((key, outcome.message))
            if self.progress:
                self.progress(len(self.outcomes), self.expected)
        return self.outcomes[key]

    def first_failure(self, start: int, end: int, *, probe_start: bool, end_first: bool) -> tuple[int, int] | None:
        """(last key that held, first key that does not), or None when the end holds.

        An error counts as "does not hold" for the direction of the search; it is also listed.
        `end_first` checks the end before searching (one evaluation when the rule holds); without
        it the end is checked last, so a journal is only read as far as the culprit needs.
        """
        if end_first and isinstance(self.evaluate(end), Holds):
            return None
        low, high = start, end
        while high - low > 1:
            middle = (low + high) // 2
            if isinstance(self.evaluate(middle), Holds):
                low = middle
            else:
                high = middle
        if isinstance(self.evaluate(high), Holds):
            return None
        if probe_start or low != start:
            self.evaluate(low)  # the confirmation: the state right before the culprit must hold
        return low, high


def _expected_probes(size: int) -> int:
    return max(1, math.ceil(math.log2(max(size, 1)))) + 2


def bisect_stream(
    journal: Journal,
    invariant: Invariant[Any],
    stream_id: str,
    *,
    aggregate: type[Aggregate] | None = None,
    from_version: int = 1,
    to_version: int | None = None,
    exhaustive: bool = False,
    explain: Explainers = explainers,
    progress: Progress | None = None,
) -> BisectResult:
    """The first version of `stream_id` after which `invariant` fails on the folded aggregate."""
    kind = aggregate or invariant.aggregate or aggregate_for(journal, stream_id)
    repository = Repository(journal, kind)
    current = repository.current_version(stream_id)
    end = current if to_version is None else to_version
    for version in (from_version, end):
        check_version(stream_id, version, current)
    if from_version > end:
        raise InvalidEventError(f"stream {stream_id!r}: from_version {from_version} is after to_version {end}")
    start = from_version - 1

    def copy(state: Aggregate) -> Aggregate:
        twin = kind(stream_id)
        # Through JSON bytes, as a snapshot would be: the copy shares no object with the live state.
        twin.restore_state(orjson.loads(canonical_json(state.snapshot_state())))
        twin.version = state.version
        return twin

    def fold(state: Aggregate, event: RecordedEvent) -> Aggregate:
        state.apply(event)
        return state

    def stored(target: int) -> tuple[int, Aggregate] | None:
        if not repository.snapshot_every:
            return None
        loaded = repository.load_snapshot(stream_id, target)
        return (loaded.version, loaded) if loaded.version > start else None

    replay: Replay[Aggregate] = Replay(
        start=start,
        end=end,
        initial=lambda: repository.load_at_version(stream_id, start) if start else kind(stream_id),
        fold=fold,
        copy=copy,
        read=lambda after, upto: journal.read_stream(stream_id, after + 1, min(upto, after + STREAM_PAGE)),
        key=lambda event: event.version,
        checkpoint_every=max(64, min(repository.snapshot_every or 1024, 1024)),
        stored=stored,
    )
    result = BisectResult(invariant.name, "stream", stream_id, start, end, 0)
    event_at = lambda version: journal.read_stream(stream_id, version, version)[0]  # noqa: E731
    _run(
        result,
        invariant,
        _Probes(replay.state_at, replay.steps, event_at),
        exhaustive=exhaustive,
        probe_start=start > 0,
        progress=progress,
        end_first=True,
    )
    return _finish(result, journal, explain)


def bisect_journal(
    journal: Journal,
    invariant: Invariant[Any],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    exhaustive: bool = False,
    explain: Explainers = explainers,
    progress: Progress | None = None,
) -> BisectResult:
    """The first global position after which `invariant`'s journal-wide fold fails.

    The fold starts from `invariant.initial()` at `since` (events before `since` are not folded).
    """
    start, end = position_range(journal, since, until)
    invariant.initial()  # fails early and clearly when the invariant has no journal-wide fold
    types = invariant.types

    def read(after: int, upto: int) -> list[RecordedEvent]:
        # Positions are gapless, so (after, upto] holds at most upto - after events of any type.
        return journal.read_all(after, min(JOURNAL_PAGE, max(upto - after, 1)), types=types)

    def fold(state: Any, event: RecordedEvent) -> Any:
        return invariant.fold(state, event) if invariant.relevant(event) else state

    window = invariant.window
    replay: Replay[Any] = Replay(
        start=start,
        end=end,
        initial=(lambda: deque(maxlen=window)) if window else invariant.initial,
        fold=(lambda recent, event: _remember(invariant, recent, event)) if window else fold,
        copy=deque.copy if window else invariant.copy,
        read=read,
        key=lambda event: event.position,
        checkpoint_every=max(256, (end - start) // 512),
    )

    def window_state_at(position: int) -> Any:
        recent = recent_events(journal, invariant, start, position)
        return recent if isinstance(recent, FoldFailed) else _fold_all(invariant, recent)

    def relevant_steps() -> Iterator[tuple[int, RecordedEvent, Any]]:
        """Every state change: the steps after the events the fold uses (the others change nothing)."""
        for key, event, state in replay.steps():
            if isinstance(state, FoldFailed):
                yield key, event, state
            elif invariant.relevant(event):  # it did not raise: the fold just called it
                yield key, event, _fold_all(invariant, state) if window else state

    result = BisectResult(invariant.name, "journal", None, start, end, 0)
    event_at = lambda position: journal.read_all(position - 1, 1)[0]  # noqa: E731
    _run(
        result,
        invariant,
        _Probes(window_state_at if window else replay.state_at, relevant_steps, event_at),
        exhaustive=exhaustive,
        probe_start=True,
        progress=progress,
    )
    return _finish(result, journal, explain)


def _remember(invariant: Invariant[Any], recent: deque[RecordedEvent], event: RecordedEvent) -> deque[RecordedEvent]:
    if invariant.relevant(event):
        recent.append(event)
    return recent


def _fold_all(invariant: Invariant[Any], events: Iterable[RecordedEvent]) -> Any:
    state = invariant.initial()
    for event in events:
        try:
            state = invariant.fold(state, event)
        except Exception as exc:
            return FoldFailed(event.position, f"{type(exc).__name__}: {exc}")
    return state


def recent_events(
    journal: Journal, invariant: Invariant[Any], start: int, position: int
) -> list[RecordedEvent] | FoldFailed:
    """The last `invariant.window` relevant events in (start, position], oldest first, read backwards
    in growing pages (a rule about recent behaviour needs only these)."""
    wanted = invariant.window or 1
    types = set(invariant.types or ())
    found: list[RecordedEvent] = []
    before, page = position + 1, 64
    while len(found) < wanted and before - 1 > start:
        events = journal.read_all(before, min(page, before - 1 - start), backwards=True)
        if not events:
            break
        for event in events:
            if types and event.type not in types:
                continue
            try:
                used = invariant.relevant(event)
            except Exception as exc:
                return FoldFailed(event.position, f"{type(exc).__name__}: {exc}")
            if used:
                found.append(event)
                if len(found) == wanted:
                    break
        before = events[-1].position
        page = min(page * 4, JOURNAL_PAGE)
    return found[::-1]


def bisect(
    journal: Journal,
    invariant: Invariant[Any],
    *,
    stream: str | None = None,
    over: Literal["stream", "journal"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    exhaustive: bool = False,
    aggregate: type[Aggregate] | None = None,
    explain: Explainers = explainers,
    progress: Progress | None = None,
) -> BisectResult:
    """Bisect over one stream (`stream=`) or over the journal (`over="journal", since=, until=`)."""
    mode = over or ("stream" if stream is not None else None)
    if mode == "stream":
        if stream is None:
            raise InvariantError("bisect over a stream needs stream=...")
        return bisect_stream(
            journal, invariant, stream, aggregate=aggregate, exhaustive=exhaustive, explain=explain, progress=progress
        )
    if mode == "journal":
        if stream is not None:
            raise InvariantError("give either stream=... or over='journal', not both")
        return bisect_journal(
            journal, invariant, since=since, until=until, exhaustive=exhaustive, explain=explain, progress=progress
        )
    raise InvariantError("bisect needs stream=... or over='journal'")


def position_range(journal: Journal, since: datetime | None, until: datetime | None) -> tuple[int, int]:
    """(position before the first event at or after `since`, last position before `until`)."""
    start = 0
    if since is not None:
        first = journal.read_all(0, 1, since=since)
        if not first:
            raise InvalidEventError(f"the journal has no events at or after {since.isoformat()}")
        start = first[0].position - 1
    if until is None:
        end = journal.head_position()
    else:
        last = journal.read_all(0, 1, until=until, backwards=True)
        end = last[0].position if last else 0
    if end <= start:
        raise InvalidEventError(
            f"the journal has no events between {since.isoformat() if since else 'the start'} "
            f"and {until.isoformat() if until else 'now'}"
        )
    return start, end


@dataclass(frozen=True)
class _Probes:
    """How a search gets its states: at any key, all in order (exhaustive), and the event at a key."""

    state_at: Callable[[int], Any]
    steps: Callable[[], Iterator[tuple[int, RecordedEvent, Any]]]
    event_at: Callable[[int], RecordedEvent]


def _run(
    result: BisectResult,
    invariant: Invariant[Any],
    probes: _Probes,
    *,
    exhaustive: bool,
    probe_start: bool,
    progress: Progress | None,
    end_first: bool = False,
) -> None:
    if exhaustive:
        _exhaustive(result, invariant, probes.steps(), progress)
        return
    search = _Search(invariant, probes.state_at, progress, _expected_probes(result.end - result.start))
    found = search.first_failure(result.start, result.end, probe_start=probe_start, end_first=end_first)
    result.evaluations = len(search.outcomes)
    result.errors = sorted(search.errors)
    if found is None:
        return
    low, high = found
    result.culprit = probes.event_at(high)
    result.outcome = search.outcomes[high]
    result.last_held = low
    result.confirmed = isinstance(search.outcomes.get(low, Holds()), Holds)


def _exhaustive(
    result: BisectResult,
    invariant: Invariant[Any],
    steps: Iterator[tuple[int, RecordedEvent, Any]],
    progress: Progress | None,
) -> None:
    """Evaluate after every event of the range; record each change of outcome."""
    previous: Outcome = Holds()
    total = result.end - result.start
    for key, event, state in steps:
        outcome = judge(invariant, state)
        result.evaluations += 1
        if isinstance(outcome, Errored):
            result.errors.append((key, outcome.message))
        if type(outcome) is not type(previous):
            result.transitions.append(Transition(key, event, previous, outcome))
            if result.culprit is None and not isinstance(outcome, Holds):
                result.culprit, result.outcome = event, outcome
        if result.culprit is None:
            result.last_held = key
        previous = outcome
        if progress:
            progress(key - result.start, total)
    result.confirmed = result.culprit is not None
    if result.culprit is None:
        result.last_held = None


def _finish(result: BisectResult, journal: Journal, explain: Explainers) -> BisectResult:
    if result.culprit is not None:
        result.explanation = explain.explain(result.culprit)
        result.lineage = causes(journal, result.culprit.event_id)
    return result
