"""A journal in a Python list: for the unit tests of higher layers, never for keeping data."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from datetime import datetime

from agentjournal.journal.base import EventIdTaken, Journal, ReadFilter, StreamWrite
from agentjournal.journal.envelope import GENESIS_HASH, RecordedEvent, StreamInfo
from agentjournal.journal.errors import StreamClosedError


class MemoryJournal(Journal):
    backend_name = "memory"

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.url = "memory://"
        self.ephemeral = True
        self._lock = threading.Lock()
        self._events: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._created: dict[str, datetime] = {}
        self._ids: dict[str, RecordedEvent] = {}

    def _write_many(self, writes: Sequence[StreamWrite]) -> list[list[RecordedEvent]]:
        with self._lock:
            batches = []
            for write in writes:  # everything is checked and built before anything is stored
                stream = self._streams.get(write.stream_id, [])
                if stream and stream[-1].closes_stream:  # before the version check: retrying cannot help
                    raise StreamClosedError(write.stream_id, stream[-1].version, stream[-1].type)
                self._check_expected(write.stream_id, write.expected, len(stream))
                batch = write.build(len(stream), stream[-1].hash if stream else GENESIS_HASH)
                if any(event.event_id in self._ids for event in batch):
                    raise EventIdTaken
                batches.append(batch)
            position = len(self._events)
            for batch in batches:
                for event in batch:
                    position += 1
                    event.position = position
            if self._before_commit:
                self._before_commit()
            for batch in batches:
                self._events.extend(batch)
                self._streams.setdefault(batch[0].stream_id, []).extend(batch)
                self._created.setdefault(batch[0].stream_id, batch[0].recorded_at)
                self._ids.update((event.event_id, event) for event in batch)
            return batches

    def _fetch_stream(
        self, stream_id: str, from_version: int, to_version: int | None, backwards: bool, limit: int | None
    ) -> list[RecordedEvent]:
        events = self._streams.get(stream_id, [])[from_version - 1 : to_version]
        if backwards:
            events = events[::-1]
        return events[:limit] if limit is not None else events

    def _fetch_all(self, after: int, limit: int, filters: ReadFilter, backwards: bool) -> list[RecordedEvent]:
        if backwards:
            end = after - 1 if after else len(self._events)
            candidates = reversed(self._events[:end])
        else:
            candidates = iter(self._events[after:])
        found = []
        for event in candidates:
            if _matches(event, filters):
                found.append(event)
                if len(found) == limit:
                    break
        return found

    def _fetch_by_ids(self, event_ids: list[str]) -> list[RecordedEvent]:
        return [self._ids[event_id] for event_id in event_ids if event_id in self._ids]

    def _fetch_streams(self, prefix: str, after: str, limit: int) -> list[StreamInfo]:
        names = sorted(self._streams)
        start = bisect.bisect_right(names, after) if after else 0
        chosen = [name for name in names[start:] if name.startswith(prefix)][:limit]
        return [
            StreamInfo(name, len(self._streams[name]), self._created[name], self._streams[name][-1].recorded_at)
            for name in chosen
        ]

    def _stream_head(self, stream_id: str) -> tuple[int, str, int | None]:
        """Derived from the events: a closed stream is one whose last event closed it."""
        stream = self._streams.get(stream_id)
        if not stream:
            return 0, GENESIS_HASH, None
        return len(stream), stream[-1].hash, stream[-1].version if stream[-1].closes_stream else None

    def _head_position(self) -> int:
        return len(self._events)


def _matches(event: RecordedEvent, filters: ReadFilter) -> bool:
    return (
        (not filters.types or event.type in filters.types)
        and (filters.tenant_id is None or event.tenant_id == filters.tenant_id)
        and (filters.correlation_id is None or event.correlation_id == filters.correlation_id)
        and (filters.causation_id is None or event.causation_id == filters.causation_id)
        and (filters.since is None or event.recorded_at >= filters.since)
        and (filters.until is None or event.recorded_at < filters.until)
    )
