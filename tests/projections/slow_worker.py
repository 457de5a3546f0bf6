"""A worker process whose runs projection pauses inside its transaction, for the SIGSTOP test.

Usage: python slow_worker.py URL NODE MARKER TTL

Before pausing it touches MARKER, so the test knows a batch (and its transaction) is under
way and can freeze the process right there.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from agentjournal.journal import Journal, RecordedEvent
from agentjournal.projections import RunsProjection, Tx, Worker


class SlowRuns(RunsProjection):
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        super().apply(tx, events)
        self.marker.touch()
        time.sleep(0.5)


def main() -> None:
    url, node, marker, ttl = sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with Journal.open(url) as journal:
        Worker(journal, [SlowRuns(marker)], node=node, ttl=ttl, batch_size=200).run(stopping.is_set, idle_timeout=0.2)


if __name__ == "__main__":
    main()
