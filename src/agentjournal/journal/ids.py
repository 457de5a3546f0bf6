"""Time-ordered event ids (UUIDv7, RFC 9562), so ids sort roughly by creation time."""

from __future__ import annotations

import os
import threading
import time


class _MonotonicMillis:
    """Milliseconds plus a 12-bit counter that keeps the ids of one process strictly ordered, and the
    random bits, taken from a 4 KiB read of os.urandom: one system call (which releases the GIL, and
    waits to take it back behind a busy thread) per 512 ids instead of one per id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0
        self._random = b""
        self._used = 0

    def forget_random(self) -> None:
        """In a forked child: never hand out the bytes the parent will also use."""
        self._random, self._used = b"", 0

    def next(self) -> tuple[int, int, int]:
        with self._lock:
            if self._used >= len(self._random):
                self._random, self._used = os.urandom(4096), 0
            rand = int.from_bytes(self._random[self._used : self._used + 8], "big")
            self._used += 8
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                self._counter += 1
                if self._counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                    self._last_ms += 1
                    self._counter = 0
            else:
                self._last_ms, self._counter = ms, 0
            return self._last_ms, self._counter, rand


_clock = _MonotonicMillis()
os.register_at_fork(after_in_child=_clock.forget_random)


def uuid7() -> str:
    ms, counter, rand = _clock.next()
    rand &= 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand
    digits = f"{value:032x}"  # the canonical 8-4-4-4-12 form, without building a uuid.UUID
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
