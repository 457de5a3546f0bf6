"""The aggregate any stream can be folded into when no specific one is registered for it."""

from __future__ import annotations

from typing import Any, ClassVar

from agentjournal.journal import RecordedEvent
from agentjournal.model.aggregate import Aggregate


class StreamSummary(Aggregate):
    """Counts per event type, the last event, and the latest data of each type.

    Enough to answer "what did this stream know at version N" for a stream nobody modelled.
    """

    snapshot_every: ClassVar[int | None] = 500

    counts: dict[str, int]
    latest: dict[str, dict[str, Any]]
    last_event: dict[str, Any] | None

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.counts = {}
        self.latest = {}
        self.last_event = None

    def when(self, event: RecordedEvent) -> None:
        self.counts[event.type] = self.counts.get(event.type, 0) + 1
        self.latest[event.type] = event.data
        self.last_event = {
            "type": event.type,
            "version": event.version,
            "event_id": event.event_id,
            "recorded_at": event.recorded_at.isoformat(),
            "actor": event.actor,
        }
