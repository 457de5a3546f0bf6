"""AsyncJournal: the same API for async code, never blocking the event loop.

Each call runs the sync journal on a worker thread (`asyncio.to_thread`), which copies
the caller's contextvars, so `journal.context(...)` stamps async appends too. The sync
backends are thread-safe (pooled or per-thread connections), so calls may overlap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from agentjournal.journal.base import Journal
from agentjournal.journal.context import EventContext
from agentjournal.journal.envelope import (
    ANY,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamInfo,
    VerifyReport,
)


class AsyncJournal:
    def __init__(self, journal: Journal) -> None:
        self.sync = journal

    @classmethod
    async def open(cls, url: str, **options: Any) -> AsyncJournal:
        return cls(await asyncio.to_thread(Journal.open, url, **options))

    @property
    def registry(self) -> Any:
        return self.sync.registry

    async def append(
        self, stream_id: str, events: Sequence[NewEvent] | NewEvent, expected_version: ExpectedVersion = ANY
    ) -> AppendResult:
        return await asyncio.to_thread(self.sync.append, stream_id, events, expected_version)

    async def append_streams(
        self, writes: Mapping[str, tuple[Sequence[NewEvent] | NewEvent, ExpectedVersion]]
    ) -> dict[str, AppendResult]:
        return await asyncio.to_thread(self.sync.append_streams, writes)

    async def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        return await asyncio.to_thread(
            self.sync.read_stream, stream_id, from_version, to_version, backwards=backwards, limit=limit
        )

    async def read_all(
        self,
        after: int = 0,
        limit: int = 1000,
        *,
        types: Iterable[str] | None = None,
        tenant_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        backwards: bool = False,
    ) -> list[RecordedEvent]:
        return await asyncio.to_thread(
            self.sync.read_all,
            after,
            limit,
            types=types,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
            since=since,
            until=until,
            backwards=backwards,
        )

    async def iter_all(self, after: int = 0, *, batch_size: int = 1000, **filters: Any) -> AsyncIterator[RecordedEvent]:
        while True:
            page = await self.read_all(after, batch_size, **filters)
            for event in page:
                yield event
            if len(page) < batch_size:
                return
            after = page[-1].position

    async def get_event(self, event_id: str) -> RecordedEvent:
        return await asyncio.to_thread(self.sync.get_event, event_id)

    async def stream_version(self, stream_id: str) -> int:
        return await asyncio.to_thread(self.sync.stream_version, stream_id)

    async def streams(self, prefix: str = "", *, after: str = "", limit: int = 1000) -> list[StreamInfo]:
        return await asyncio.to_thread(self.sync.streams, prefix, after=after, limit=limit)

    async def head_position(self) -> int:
        return await asyncio.to_thread(self.sync.head_position)

    async def verify(self, stream_id: str | None = None) -> VerifyReport:
        return await asyncio.to_thread(self.sync.verify, stream_id)

    def context(self, **fields: Any) -> AbstractContextManager[EventContext]:
        return self.sync.context(**fields)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncJournal:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
