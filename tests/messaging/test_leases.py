"""The lease registry on every SQL backend: ownership, expiry, monotonic tokens and the fence."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from agentjournal.journal import Journal, JournalError
from agentjournal.messaging import LeaseLostError, LeaseRegistry


@pytest.fixture
def journal(sql_journal_url: str) -> Iterator[Journal]:
    with Journal.open(sql_journal_url) as opened:
        yield opened


def test_one_owner_at_a_time_and_reacquire_keeps_the_token(journal: Journal) -> None:
    leases = LeaseRegistry(journal, ttl=30)
    first = leases.acquire("projection:runs", "node-a")
    assert first is not None and first.token == 1
    assert leases.acquire("projection:runs", "node-b") is None
    again = leases.acquire("projection:runs", "node-a")
    assert again is not None and again.token == 1 and again.expires_at >= first.expires_at
    [info] = leases.leases()
    assert (info.name, info.owner, info.token, info.held) == ("projection:runs", "node-a", 1, True)


def test_expired_lease_is_taken_over_with_a_higher_token_and_the_old_owner_is_fenced(journal: Journal) -> None:
    leases = LeaseRegistry(journal, ttl=0.3)
    old = leases.acquire("projection:runs", "node-a")
    assert old is not None
    time.sleep(0.45)
    new = leases.acquire("projection:runs", "node-b", ttl=30)
    assert new is not None and new.token == old.token + 1
    with pytest.raises(LeaseLostError, match=r"node-a lost token 1 \(now token 2 of node-b\)"):
        leases.renew(old)
    journal.migrate(component="projections", package="agentjournal.projections")
    # A fenced write by the old owner rolls back entirely.
    p = journal.param
    with pytest.raises(LeaseLostError, match="the write was refused"), journal.transaction() as cursor:
        cursor.execute(f"INSERT INTO aj_projections (name, position, updated_at) VALUES ({p}, 5, 0)", ("stale",))
        leases.check(cursor, old)
    assert journal.query("SELECT count(*) FROM aj_projections")[0][0] == 0
    with journal.transaction() as cursor:
        cursor.execute(f"INSERT INTO aj_projections (name, position, updated_at) VALUES ({p}, 5, 0)", ("fresh",))
        leases.check(cursor, new)
    assert journal.query("SELECT name FROM aj_projections") == [("fresh",)]


def test_renew_extends_and_release_frees_at_once(journal: Journal) -> None:
    leases = LeaseRegistry(journal, ttl=1.0)
    lease = leases.acquire("relay", "node-a")
    assert lease is not None
    for _ in range(3):
        time.sleep(0.4)
        lease = leases.renew(lease)
    assert leases.acquire("relay", "node-b") is None  # renewed past its first TTL
    assert leases.release(lease) is True
    taken = leases.acquire("relay", "node-b")
    assert taken is not None and taken.token == 2
    assert leases.release(lease) is False  # a released lease cannot be released twice
    with pytest.raises(LeaseLostError):
        leases.renew(lease)


def test_an_expired_lease_nobody_took_can_be_renewed_but_not_written_under(journal: Journal) -> None:
    leases = LeaseRegistry(journal, ttl=0.2)
    lease = leases.acquire("relay", "node-a")
    assert lease is not None
    time.sleep(0.3)
    with pytest.raises(LeaseLostError, match="now token 1 of node-a"), journal.transaction() as cursor:
        leases.check(cursor, lease)  # expired: the fence refuses
    renewed = leases.renew(lease, ttl=30)  # the token never changed hands
    assert renewed.token == 1 and renewed.expires_at > lease.expires_at
    with journal.transaction() as cursor:
        leases.check(cursor, renewed)


def test_expired_lease_is_shown_free(journal: Journal) -> None:
    leases = LeaseRegistry(journal, ttl=0.2)
    assert leases.acquire("job:alerts", "node-a") is not None
    time.sleep(0.3)
    [info] = leases.leases()
    assert info.held is False and info.owner == "node-a"


def test_the_memory_backend_and_a_bad_ttl_are_refused() -> None:
    with pytest.raises(JournalError, match="memory backend has none"):
        LeaseRegistry(Journal.open("memory://"))
    with Journal.open("sqlite:///:memory:") as journal, pytest.raises(JournalError, match="TTL must be positive"):
        LeaseRegistry(journal, ttl=0)
