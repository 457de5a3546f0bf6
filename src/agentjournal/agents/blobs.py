"""Large values stored once by content hash, on a stream `blob-<sha256>` of one BlobStored event.

A run's events refer to a blob by its stream id, so an output that ten runs (or ten steps)
produce is stored once, and a run's stream stays small and fast to fold.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from typing import Any

from agentjournal.journal import ConcurrencyError, Journal, StreamNotFoundError
from agentjournal.journal.envelope import canonical_json
from agentjournal.runs import new_event
from agentjournal.runs.events import BLOB_PREFIX, BlobStored


class BlobStore:
    """Put and get JSON values by content hash, with a small in-process cache."""

    def __init__(self, journal: Journal, *, cache_size: int = 256) -> None:
        self.journal = journal
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Any] = OrderedDict()

    @staticmethod
    def ref_of(encoded: bytes) -> str:
        return BLOB_PREFIX + hashlib.sha256(encoded).hexdigest()

    def put(self, value: Any, encoded: bytes | None = None) -> str:
        """Store `value` unless it is already stored; return its reference `blob-<sha256>`."""
        encoded = encoded if encoded is not None else canonical_json(value)
        ref = self.ref_of(encoded)
        if ref in self._cache or self.journal.stream_version(ref) > 0:
            self._remember(ref, value)
            return ref
        event = new_event(
            BlobStored(sha256=ref.removeprefix(BLOB_PREFIX), size=len(encoded), content=value), actor="tool_executor"
        )
        # A ConcurrencyError means another writer stored the same content first, which is as good.
        with contextlib.suppress(ConcurrencyError):
            self.journal.append(ref, [event], expected_version=0)
        self._remember(ref, value)
        return ref

    def get(self, ref: str) -> Any:
        if ref in self._cache:
            self._cache.move_to_end(ref)
            return self._cache[ref]
        events = self.journal.read_stream(ref, 1, 1)
        if not events:
            raise StreamNotFoundError(f"blob {ref} is not in {self.journal.url}")
        value = events[0].data["content"]
        self._remember(ref, value)
        return value

    def _remember(self, ref: str, value: Any) -> None:
        self._cache[ref] = value
        self._cache.move_to_end(ref)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
