"""Event ids: time-ordered UUIDv7, unique across threads and across forked processes."""

from __future__ import annotations

import os
import threading
import uuid

from agentjournal.journal.ids import uuid7


def test_ids_are_version_7_and_strictly_ordered_in_one_process() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(uuid.UUID(value).version == 7 for value in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_threads_never_share_an_id() -> None:
    found: list[list[str]] = [[] for _ in range(4)]
    threads = [
        threading.Thread(target=lambda out: out.extend(uuid7() for _ in range(2000)), args=(out,)) for out in found
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [value for out in found for value in out]
    assert len(set(every)) == len(every)


def test_a_forked_child_does_not_reuse_the_parents_random_bits() -> None:
    uuid7()  # the parent holds unused random bytes when it forks
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        os.write(write, "\n".join(uuid7()[19:] for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        theirs = set(pipe.read().split("\n"))
    ours = {uuid7()[19:] for _ in range(100)}  # the random part (variant bits and 62 random bits)
    assert len(theirs) == 100 and not ours & theirs
