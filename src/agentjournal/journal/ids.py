"""Time-ordered event ids (UUIDv7, RFC 9562), so ids sort roughly by creation time."""

from __future__ import annotations

import os
import threading
import time


class _MonotonicMillis:
    """Milliseconds plus a 12-bit counter that keeps the ids of one process strictly ordered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0

    def next(self) -> tuple[int, int]:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                self._counter += 1
                if self._counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                    self._last_ms += 1
                    self._counter = 0
            else:
                self._last_ms, self._counter = ms, 0
            return self._last_ms, self._counter


_clock = _MonotonicMillis()


def uuid7() -> str:
    ms, counter = _clock.next()
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand
    digits = f"{value:032x}"  # the canonical 8-4-4-4-12 form, without building a uuid.UUID
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
