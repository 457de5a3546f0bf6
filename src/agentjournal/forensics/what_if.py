"""What-if replay: fold a stream with hypothetical events injected, dropped or replaced.

Everything happens in memory: the hypothetical events are envelopes that are never stored,
and no snapshot is read or written, so the database is exactly as it was before the call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agentjournal.forensics.invariants import Invariant, Outcome
from agentjournal.journal import InvalidEventError, Journal, NewEvent, RecordedEvent
from agentjournal.journal.envelope import canonical_json
from agentjournal.journal.ids import uuid7
from agentjournal.model import Aggregate, VersionOutOfRangeError
from agentjournal.model.repository import read_versions, require_stream
from agentjournal.runs import aggregate_for


@dataclass
class WhatIfResult:
    stream_id: str
    actual: Aggregate
    hypothetical: Aggregate
    events: list[RecordedEvent]
    """The hypothetical stream, renumbered; injected and replaced events have `hash == ""`."""
    changes: list[str]
    verdicts: dict[str, tuple[Outcome, Outcome]] = field(default_factory=dict)
    """Invariant name -> (outcome on the actual state, outcome on the hypothetical state)."""

    def changed_verdicts(self) -> dict[str, tuple[Outcome, Outcome]]:
        return {name: pair for name, pair in self.verdicts.items() if type(pair[0]) is not type(pair[1])}


def what_if(
    journal: Journal,
    stream_id: str,
    *,
    inject: Sequence[tuple[int, NewEvent]] = (),
    drop: Iterable[int] = (),
    replace: Mapping[int, NewEvent] | None = None,
    invariants: Sequence[Invariant[Any]] = (),
    aggregate: type[Aggregate] | None = None,
    upto: int | None = None,
) -> WhatIfResult:
    """The stream (up to version `upto`) folded as it happened and as it might have happened.

    `inject=[(after_version, event)]` adds an event after that version (0: before the first);
    `drop=[version]` removes events; `replace={version: event}` swaps one for another.
    The aggregate is `aggregate`, else the one the invariants fold, else the stream's registered type.
    """
    current = require_stream(journal, stream_id)
    end = current if upto is None else upto
    _check(stream_id, end, current, "upto", low=1)
    replace = dict(replace or {})
    dropped = set(drop)
    for version in dropped:
        _check(stream_id, version, end, "drop")
    for version in replace:
        _check(stream_id, version, end, "replace")
        if version in dropped:
            raise InvalidEventError(f"stream {stream_id!r}: version {version} is both dropped and replaced")
    injected: dict[int, list[NewEvent]] = {}
    for after, event in inject:
        _check(stream_id, after, end, "inject after", low=0)
        injected.setdefault(after, []).append(event)
    for new in [*replace.values(), *(event for _, event in inject)]:
        if not isinstance(new, NewEvent) or not isinstance(new.type, str) or not new.type:
            raise InvalidEventError(f"stream {stream_id!r}: what-if events must be NewEvent with a type, got {new!r}")

    declared = {rule.aggregate for rule in invariants if rule.aggregate is not None}
    if aggregate is None and len(declared) > 1:
        names = ", ".join(sorted(kind.__name__ for kind in declared))
        raise InvalidEventError(f"the invariants fold different aggregates ({names}); pass aggregate=...")
    kind = aggregate or (declared.pop() if declared else aggregate_for(journal, stream_id))
    actual, hypothetical = kind(stream_id), kind(stream_id)
    events: list[RecordedEvent] = []
    changes: list[str] = []

    def add(event: RecordedEvent) -> None:
        event.version = len(events) + 1
        events.append(event)
        hypothetical.apply(event)

    for anchor in [None, *read_versions(journal, stream_id, 1, end)]:
        if anchor is not None:
            actual.apply(anchor)
            version = anchor.version
            if version in dropped:
                changes.append(f"dropped version {version} ({anchor.type})")
            elif version in replace:
                changes.append(f"replaced version {version} ({anchor.type}) with {replace[version].type}")
                add(_hypothetical(journal, stream_id, replace[version], anchor))
            else:
                add(_copy(anchor))
        for new in injected.get(0 if anchor is None else anchor.version, []):
            changes.append(f"injected {new.type} after version {0 if anchor is None else anchor.version}")
            add(_hypothetical(journal, stream_id, new, anchor))
    verdicts = {rule.name: (rule.check(actual), rule.check(hypothetical)) for rule in invariants}
    return WhatIfResult(stream_id, actual, hypothetical, events, changes, verdicts)


def _check(stream_id: str, version: object, last: int, what: str, *, low: int = 1) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or not low <= version <= last:
        raise VersionOutOfRangeError(stream_id, f"{version!r} (for {what}; valid: {low}..{last})", last)


def _copy(event: RecordedEvent) -> RecordedEvent:
    """A renumberable copy, so the real event objects are never changed."""
    return event.with_data(event.data, event.schema_version)


def _hypothetical(journal: Journal, stream_id: str, new: NewEvent, anchor: RecordedEvent | None) -> RecordedEvent:
    """An envelope for an event that never happened: no position, no hash, the anchor's time."""
    data = new.data.model_dump(mode="json") if isinstance(new.data, BaseModel) else dict(new.data)
    first = anchor or journal.read_stream(stream_id, 1, 1)[0]
    return RecordedEvent(
        event_id=new.event_id or uuid7(),
        stream_id=stream_id,
        version=0,
        position=0,
        type=new.type,
        schema_version=new.schema_version or journal.registry.schema_version(new.type),
        recorded_at=first.recorded_at,
        actor=new.actor or first.actor,
        tenant_id=new.tenant_id or first.tenant_id,
        correlation_id=new.correlation_id or first.correlation_id,
        causation_id=new.causation_id or (anchor.event_id if anchor else None),
        traceparent=new.traceparent,
        data_json=canonical_json(data),
        metadata_json=canonical_json(new.metadata),
        prev_hash="",
        hash="",
        data=data,
    )
