"""Importing an export: checked whole before anything is written, and finished by running it again.

When the records can be read more than once (a list, or an `ExportFile`), an import is done in
three steps, and only the last one writes:

1. every record is checked on its own (a JSON object, an exported envelope whose hash matches its
   content) and against the records before it: each stream's versions come in order, each one
   chains onto the one before, nothing follows a closing event, no event id appears twice. Every
   problem is listed with its line;
2. each stream of the input is compared with the stream stored under its name: the part already
   stored (the same hash at the same version) is skipped, a stream stored up to some version is
   continued from there, and whatever does not fit (a different event at a version, missing
   versions, a closed stream) is listed;
3. if nothing was listed, what is not yet stored is written, one transaction per run of consecutive
   events of one stream (at most `BATCH_EVENTS`).

Each transaction commits on its own, so an import stopped in step 3 (an error, a lost connection,
`kill -9`) leaves whole batches behind; running the same import again skips them (step 2) and
writes the rest. An import of what is already stored writes nothing and says so.

A one-shot iterator can be read only once: its records are checked as they come, and each batch
is compared with the stored stream just before it is written; an error part-way says how much was
stored before it (ImportInterruptedError), and running it again finishes it the same way.

This module holds decisions only; the journal does the reading and writing (`Journal.import_events`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import orjson

from agentjournal.journal.envelope import (
    MAX_STREAM_ID_LENGTH,
    MAX_TYPE_LENGTH,
    RecordedEvent,
    canonical_json,
    check_identifier,
)
from agentjournal.journal.errors import (
    ImportInterruptedError,
    ImportRefusedError,
    InvalidEventError,
    JournalError,
)

if TYPE_CHECKING:
    from agentjournal.journal.base import Journal

BATCH_EVENTS = 1000
"""At most this many events per transaction, so a long stream does not become one huge write."""
BATCH_BYTES = 8 * 1024 * 1024
"""And at most about this many bytes of payload."""
MAX_LISTED = 20
"""Problems listed in one refusal (the count says how many more there are)."""


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did: events written now, and events found already stored (skipped)."""

    imported: int
    already_present: int
    streams: int

    @property
    def total(self) -> int:
        """Every event of the input."""
        return self.imported + self.already_present

    @property
    def changed(self) -> bool:
        return self.imported > 0


class ImportSource(Protocol):
    """Records as (where, value): where names the record in messages ("runs.jsonl:17"), and the
    value is the decoded JSON, or a `BadLine` saying why the line could not be decoded."""

    def entries(self) -> Iterator[tuple[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class BadLine:
    problem: str


class ExportFile:
    """A JSON Lines export on disk (what `agentjournal export` writes), read again for each step."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def entries(self) -> Iterator[tuple[str, Any]]:
        try:
            lines = self.path.open("rb")
        except OSError as exc:
            raise ImportRefusedError([f"{self.path}: cannot read it ({exc.strerror})"]) from None
        with lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"{self.path}:{number}"
                try:
                    yield where, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    cut = "" if line.endswith(b"\n") else ", and the file ends in the middle of it (truncated?)"
                    yield where, BadLine(f"not a JSON line ({exc}){cut}")

    def check(self) -> None:
        """Step 1 alone, without a journal: raises ImportRefusedError naming every bad line."""
        _check_input(self)

    def count(self) -> int:
        """How many records it holds (non-blank lines), for a progress bar."""
        with self.path.open("rb") as lines:
            return sum(1 for line in lines if line.strip())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for where, value in self.entries():
            if isinstance(value, BadLine):
                raise ImportRefusedError([f"{where}: {value.problem}"])
            yield value


class _Records:
    """Records given in Python: a collection is read once per step, an iterator only once."""

    def __init__(self, records: Iterable[Any]) -> None:
        self._records = records
        self.replayable = not isinstance(records, Iterator)

    def entries(self) -> Iterator[tuple[str, Any]]:
        for number, record in enumerate(self._records, start=1):
            yield f"record {number}", record


def source_of(records: Iterable[Any] | ExportFile) -> tuple[ImportSource, bool]:
    """(the source, whether it can be read more than once)."""
    if isinstance(records, ExportFile):
        return records, True
    source = _Records(records)
    return source, source.replayable


def event_from_export(record: Any, where: str) -> RecordedEvent:
    """An exported envelope back into a RecordedEvent, checking its own hash (raises InvalidEventError)."""
    if isinstance(record, BadLine):
        raise InvalidEventError(f"{where}: {record.problem}")
    if not isinstance(record, dict):
        raise InvalidEventError(f"{where}: expected a JSON object, got {type(record).__name__}")
    try:
        version = record["version"]
        schema_version = record["schema_version"]
        for name, number in (("version", version), ("schema_version", schema_version)):
            if not isinstance(number, int) or isinstance(number, bool) or number < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {number!r}")
        recorded_at = datetime.fromisoformat(record["recorded_at"])
        if recorded_at.tzinfo is None:
            raise ValueError(f"recorded_at {record['recorded_at']!r} has no time zone")
        event = RecordedEvent(
            event_id=str(uuid.UUID(record["event_id"])),
            stream_id=check_identifier(record["stream_id"], "stream id", MAX_STREAM_ID_LENGTH),
            version=version,
            position=0,
            type=check_identifier(record["type"], "event type", MAX_TYPE_LENGTH),
            schema_version=schema_version,
            recorded_at=recorded_at,
            actor=record.get("actor"),
            tenant_id=record.get("tenant_id"),
            correlation_id=record.get("correlation_id"),
            causation_id=record.get("causation_id"),
            traceparent=record.get("traceparent"),
            data_json=canonical_json(record["data"]),
            metadata_json=canonical_json(record.get("metadata", {})),
            prev_hash=record["prev_hash"],
            hash=record["hash"],
        )
        if not isinstance(event.hash, str) or not isinstance(event.prev_hash, str):
            raise ValueError("hash and prev_hash must be strings")
    except KeyError as exc:
        raise InvalidEventError(f"{where}: not an exported envelope (it has no {exc.args[0]!r})") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidEventError(f"{where}: not an exported envelope ({exc})") from None
    except InvalidEventError as exc:
        raise InvalidEventError(f"{where}: not an exported envelope ({exc})") from None
    if event.compute_hash() != event.hash:
        raise InvalidEventError(
            f"{where} (stream {event.stream_id!r} version {event.version}): "
            "its hash does not match its content; refusing to import a changed event"
        )
    return event


# ----- step 1: the input on its own ---------------------------------------------------------


@dataclass(slots=True)
class _InputStream:
    """One stream as the input holds it (steps 1 and 2)."""

    first_version: int
    first_prev_hash: str
    first_where: str
    last_version: int
    last_hash: str
    last_where: str
    closed: bool
    events: int = 1
    skip_through: int = 0
    """Versions up to this one are already stored (decided in step 2)."""


@dataclass(slots=True)
class _Problems:
    listed: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, problem: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append(problem)

    def refuse(self) -> None:
        if self.count:
            raise ImportRefusedError(self.listed, self.count)


def _check_input(source: ImportSource) -> dict[str, _InputStream]:
    """Step 1: every record, and each stream's chain inside the input. Raises ImportRefusedError."""
    problems = _Problems()
    streams: dict[str, _InputStream] = {}
    broken: set[str] = set()
    ids: set[bytes] = set()
    for where, record in source.entries():
        try:
            event = event_from_export(record, where)
        except InvalidEventError as exc:
            problems.add(str(exc))
            continue
        key = uuid.UUID(event.event_id).bytes
        if key in ids:
            problems.add(f"{where}: event id {event.event_id} appears twice in the input")
        ids.add(key)
        name = event.stream_id
        if name in broken:
            continue
        known = streams.get(name)
        if known is None:
            streams[name] = _InputStream(
                event.version, event.prev_hash, where, event.version, event.hash, where, event.closes_stream
            )
            continue
        problem = _continuation_problem(known, event, where)
        if problem:
            problems.add(problem)
            broken.add(name)  # its later records would only repeat the same problem
            continue
        known.last_version, known.last_hash, known.last_where = event.version, event.hash, where
        known.closed = event.closes_stream
        known.events += 1
    problems.refuse()
    return streams


def _continuation_problem(known: _InputStream, event: RecordedEvent, where: str) -> str | None:
    name, last = event.stream_id, known.last_version
    if known.closed:
        return (
            f"{where}: stream {name!r} version {event.version} follows its closing event "
            f"(version {last}, {known.last_where}); nothing can follow it"
        )
    if event.version <= last:
        return (
            f"{where}: stream {name!r} version {event.version} comes after its version {last} "
            f"({known.last_where}); an export lists each stream's events in version order"
        )
    if event.version > last + 1:
        return (
            f"{where}: stream {name!r} jumps from version {last} ({known.last_where}) to version "
            f"{event.version}: {_versions(last + 1, event.version - 1)} missing, or out of order"
        )
    if event.prev_hash != known.last_hash:
        return (
            f"{where}: stream {name!r} version {event.version} does not chain onto version {last} "
            f"({known.last_where}): its prev_hash is not that event's hash"
        )
    return None


# ----- step 2: the input against the journal ------------------------------------------------


def _check_against(journal: Journal, source: ImportSource, streams: dict[str, _InputStream]) -> None:
    """Step 2: decide what of each stream is stored already, and refuse what does not fit."""
    problems = _Problems()
    heads = journal._stream_heads(list(streams))
    partial: dict[str, int] = {}
    for name, given in streams.items():
        version, last_hash, closed_at = heads[name]
        first, last = given.first_version, given.last_version
        if version < first - 1:
            held = f"holds it only up to version {version}" if version else f"has no stream {name!r}"
            problems.add(
                f"{given.first_where}: stream {name!r} starts at version {first} in the input, but this "
                f"journal {held}: {_versions(version + 1, first - 1)} missing"
            )
        elif version == first - 1:
            if closed_at is not None:
                problems.add(
                    f"{given.first_where}: stream {name!r} is closed in this journal at version {version}; "
                    f"the input continues it with version {first}"
                )
            elif given.first_prev_hash != last_hash:
                onto = f"the stored version {version}" if version else "nothing: a stream's version 1 starts a chain"
                problems.add(
                    f"{given.first_where}: stream {name!r} version {first} does not chain onto {onto} "
                    f"(prev_hash {given.first_prev_hash[:12]}… ≠ {last_hash[:12]}…)"
                )
            given.skip_through = version
        elif version >= last:
            stored = last_hash if version == last else journal._stored_hash(name, last)
            if stored != given.last_hash:
                problems.add(_conflict(name, last, given.last_where, stored, given.last_hash))
            given.skip_through = last
        else:  # the journal holds a part of it: compare at its stored version, found in the input below
            partial[name] = version
    if partial:
        for where, record in source.entries():
            event = event_from_export(record, where)
            if partial.get(event.stream_id) != event.version:
                continue
            stored = heads[event.stream_id][1]
            if stored != event.hash:
                problems.add(_conflict(event.stream_id, event.version, where, stored, event.hash))
            streams[event.stream_id].skip_through = event.version
    problems.refuse()


def _versions(first: int, last: int) -> str:
    return f"version {first} is" if first == last else f"versions {first}..{last} are"


def _conflict(stream_id: str, version: int, where: str, stored: str | None, given: str) -> str:
    return (
        f"{where}: stream {stream_id!r} version {version} is stored in this journal with different content "
        f"(hash {(stored or '?')[:12]}… ≠ {given[:12]}… in the input): this is not a copy of the stored stream"
    )


# ----- step 3: writing ----------------------------------------------------------------------


@dataclass(slots=True)
class _Progress:
    imported: int = 0
    already_present: int = 0
    streams: set[str] = field(default_factory=set)
    heads: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    """(version, hash) of each stream as stored, known without asking the journal again; the hash is
    None when step 2 compared the stored versions with the input already."""


def run_import(
    journal: Journal,
    records: Iterable[Any] | ExportFile,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    source, replayable = source_of(records)
    done = _Progress()
    if replayable:
        streams = _check_input(source)
        _check_against(journal, source, streams)
        for name, given in streams.items():
            done.heads[name] = (given.skip_through, None)  # compared in step 2: skip by version
        if all(given.skip_through >= given.last_version for given in streams.values()):
            total = sum(given.events for given in streams.values())
            return ImportReport(0, total, len(streams))
    batch: list[RecordedEvent] = []
    batch_where = ""
    size = 0
    for where, record in source.entries():
        try:
            event = event_from_export(record, where)
        except InvalidEventError as exc:
            if batch:  # what came before the bad record is stored; nothing after it
                _write(journal, batch, batch_where, done)
            _stop(done, where, exc)
        done.streams.add(event.stream_id)
        if batch and (
            event.stream_id != batch[-1].stream_id
            or event.version != batch[-1].version + 1
            or len(batch) >= BATCH_EVENTS
            or size >= BATCH_BYTES
        ):
            _write(journal, batch, batch_where, done)
            if progress:
                progress(done.imported + done.already_present)
            batch, size = [], 0
        if not batch:
            batch_where = where
        batch.append(event)
        size += len(event.data_json) + len(event.metadata_json)
    if batch:
        _write(journal, batch, batch_where, done)
        if progress:
            progress(done.imported + done.already_present)
    return ImportReport(done.imported, done.already_present, len(done.streams))


def _write(journal: Journal, batch: list[RecordedEvent], where: str, done: _Progress) -> None:
    """Write one batch, after dropping the part of it that is already stored."""
    first, name = batch[0], batch[0].stream_id
    try:
        head = done.heads.get(name)
        if head is None:
            version, last_hash, _ = journal._stream_head(name)
            head = (version, last_hash)
        version, known_hash = head
        if version >= first.version:
            stored_last = batch[min(version, batch[-1].version) - first.version]
            if known_hash is not None:  # not compared in step 2: compare now
                stored: str | None = known_hash
                if version != stored_last.version:
                    stored = journal._stored_hash(name, stored_last.version)
                if stored != stored_last.hash:
                    raise InvalidEventError(_conflict(name, stored_last.version, where, stored, stored_last.hash))
            done.already_present += stored_last.version - first.version + 1
            batch = batch[stored_last.version - first.version + 1 :]
            if not batch:
                return
        elif version < first.version - 1:
            held = f"holds it only up to version {version}" if version else f"has no stream {name!r}"
            raise InvalidEventError(
                f"stream {name!r} continues with version {first.version}, but this journal {held}: "
                f"{_versions(version + 1, first.version - 1)} missing"
            )
        journal._import_batch(batch)
    except JournalError as exc:
        _stop(done, where, exc)
    done.imported += len(batch)
    done.heads[name] = (batch[-1].version, batch[-1].hash)


def _stop(done: _Progress, where: str, cause: JournalError) -> NoReturn:
    """An error part-way: refused if nothing was written yet, else say what was."""
    if isinstance(cause, ImportRefusedError) and not done.imported:
        raise cause
    said = str(cause)
    problem = said if said.startswith(where) else f"{where}: {said}"
    if not done.imported:
        raise ImportRefusedError([problem]) from None
    raise ImportInterruptedError(
        f"import stopped at {problem}. {done.imported} event(s) were imported before it"
        + (f" ({done.already_present} more were already stored)" if done.already_present else "")
        + "; nothing after it was. Fix the cause and run the import again to finish it: what is stored is skipped",
        done.imported,
        done.already_present,
    ) from None
