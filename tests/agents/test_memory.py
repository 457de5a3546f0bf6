"""The memory service: per tenant and user, redacted before it is journaled, expiring, recalled by relevance."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from agentjournal.agents.memory import (
    MEMORY_FORGOTTEN,
    MEMORY_STORED,
    MemoryItemNotFound,
    MemoryService,
    memory_stream,
    tokenize,
)
from agentjournal.agents.redaction import Finding
from agentjournal.forensics.explainers import explainers
from agentjournal.journal import Journal

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


def test_recall_returns_task_relevant_items_best_first(journal: Journal) -> None:
    memory = MemoryService(journal)
    refund = memory.remember("acme", "u1", "Customer asked for a refund of order A-17; refund approved", now=NOW)
    shipping = memory.remember("acme", "u1", "Order A-17 was shipped with DHL to Berlin", now=NOW)
    memory.remember("acme", "u1", "Prefers short answers in German", now=NOW)
    found = memory.recall("acme", "u1", "what happened with the refund?", now=NOW)
    assert [item.item_id for item in found] == [refund]
    found = memory.recall("acme", "u1", "refund for order A-17", now=NOW)
    assert [item.item_id for item in found] == [refund, shipping]
    assert found[0].score > found[1].score > 0
    assert memory.recall("acme", "u1", "weather in Tokyo", now=NOW) == []
    assert memory.recall("acme", "u1", "the of and", now=NOW) == []  # only stop words
    assert len(memory.recall("acme", "u1", "order", k=1, now=NOW)) == 1


def test_tags_count_for_relevance(journal: Journal) -> None:
    memory = MemoryService(journal)
    tagged = memory.remember("acme", "u1", "Speaks to us on Mondays", tags=["billing"], now=NOW)
    assert [item.item_id for item in memory.recall("acme", "u1", "billing question", now=NOW)] == [tagged]


def test_items_expire_after_their_ttl(journal: Journal) -> None:
    memory = MemoryService(journal)
    memory.remember("acme", "u1", "temporary note about the refund", ttl=timedelta(hours=1), now=NOW)
    assert len(memory.recall("acme", "u1", "refund", now=NOW + timedelta(minutes=59))) == 1
    assert memory.recall("acme", "u1", "refund", now=NOW + timedelta(hours=1)) == []
    assert len(memory.items("acme", "u1", now=NOW + timedelta(days=2), include_expired=True)) == 1


def test_long_term_memory_is_opt_in(journal: Journal) -> None:
    memory = MemoryService(journal)
    with pytest.raises(ValueError, match="long-term memory, which is opt-in: pass long_term=True"):
        memory.remember("acme", "u1", "remember forever", ttl=None, now=NOW)
    short = memory.remember("acme", "u1", "the refund note, short term", now=NOW)
    forever = memory.remember("acme", "u1", "the refund preference, long term", ttl=None, long_term=True, now=NOW)
    later = NOW + timedelta(days=400)
    found = memory.recall("acme", "u1", "refund", now=later)
    assert [item.item_id for item in found] == [forever]
    assert found[0].long_term and found[0].expires_at is None
    assert memory.items("acme", "u1", now=NOW)[0].item_id == short
    assert memory.items("acme", "u1", now=NOW)[0].expires_at == NOW + timedelta(days=1)  # the default TTL


def test_pii_is_redacted_before_it_is_journaled(journal: Journal) -> None:
    memory = MemoryService(journal)
    memory.remember(
        "acme", "u1", "Reach carol@example.com or +44 20 7946 0958, card 4111 1111 1111 1111", tags=["ip 10.1.2.3"]
    )
    [event] = journal.read_stream(memory_stream("acme", "u1"))
    assert event.type == MEMORY_STORED and event.tenant_id == "acme"
    assert event.data["text"] == "Reach [REDACTED:email] or [REDACTED:phone], card [REDACTED:card]"
    assert event.data["tags"] == ["ip [REDACTED:ip]"]
    assert event.data["redactions"] == [
        {"kind": "card", "count": 1},
        {"kind": "email", "count": 1},
        {"kind": "ip", "count": 1},
        {"kind": "phone", "count": 1},
    ]
    stored = str({key: value for key, value in event.data.items() if key != "item_id"})  # a uuid may hold "4111"
    for secret in ("carol", "7946", "4111", "10.1.2.3"):
        assert secret not in stored
    [item] = memory.items("acme", "u1")
    assert item.redactions == (Finding("card", 1), Finding("email", 1), Finding("ip", 1), Finding("phone", 1))


def test_memory_is_per_tenant_and_user(journal: Journal) -> None:
    memory = MemoryService(journal)
    memory.remember("acme", "u1", "refund approved for u1", now=NOW)
    memory.remember("globex", "u1", "refund denied for the other tenant", now=NOW)
    memory.remember("acme", "u2", "refund pending for u2", now=NOW)
    assert [item.text for item in memory.recall("acme", "u1", "refund", now=NOW)] == ["refund approved for u1"]
    assert [item.text for item in memory.recall("globex", "u1", "refund", now=NOW)] == [
        "refund denied for the other tenant"
    ]


def test_stream_names_cannot_run_together() -> None:
    assert memory_stream("a-b", "c") != memory_stream("a", "b-c")
    assert memory_stream("acme", "user-1") == "memory-acme-" + hashlib.sha256(b"user-1").hexdigest()[:32]
    assert "user-1" not in memory_stream("acme", "user-1")  # a user id never appears in a stream id
    with pytest.raises(ValueError, match="user_id must be a non-empty string"):
        memory_stream("acme", "")


def test_forget_removes_an_item_and_the_journal_keeps_why(journal: Journal) -> None:
    memory = MemoryService(journal)
    first = memory.remember("acme", "u1", "refund one", now=NOW)
    memory.remember("acme", "u1", "refund two", now=NOW)
    memory.forget("acme", "u1", first, reason="user asked; wrote from dave@example.com")
    assert [item.text for item in memory.recall("acme", "u1", "refund", now=NOW)] == ["refund two"]
    with pytest.raises(MemoryItemNotFound, match=first):
        memory.forget("acme", "u1", first)
    assert memory.forget_all("acme", "u1") == 1
    assert memory.recall("acme", "u1", "refund", now=NOW) == []
    forgotten = [event for event in journal.read_stream(memory_stream("acme", "u1")) if event.type == MEMORY_FORGOTTEN]
    assert forgotten[0].data == {"item_id": first, "reason": "user asked; wrote from [REDACTED:email]"}


def test_a_second_service_sees_the_same_memory(journal: Journal, sqlite_or_postgres_url: str) -> None:
    """Memory lives in the journal, not in the process: another service (another worker) reads it back."""
    writer = MemoryService(journal)
    item = writer.remember("acme", "u1", "refund approved", now=NOW)
    assert writer.recall("acme", "u1", "refund", now=NOW)[0].item_id == item  # warms the writer's cache
    with Journal.open(sqlite_or_postgres_url) as other:
        reader = MemoryService(other)
        assert [found.item_id for found in reader.recall("acme", "u1", "refund", now=NOW)] == [item]
        newer = reader.remember("acme", "u1", "second refund approved", now=NOW)
    assert {found.item_id for found in writer.recall("acme", "u1", "refund", now=NOW)} == {item, newer}


def test_memory_works_on_every_backend(journal_url: str) -> None:
    with Journal.open(journal_url) as journal:
        memory = MemoryService(journal)
        item = memory.remember("acme", "user-1", "refund approved for carol@example.com")
        [found] = memory.recall("acme", "user-1", "refund")
        assert (found.item_id, found.text) == (item, "refund approved for [REDACTED:email]")
        memory.forget("acme", "user-1", item)
        assert memory.recall("acme", "user-1", "refund") == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "  "}, "non-empty text"),
        ({"ttl": timedelta(0)}, "ttl must be positive"),
        ({"now": datetime(2026, 1, 1)}, "no time zone"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(journal: Journal, kwargs: dict[str, object], message: str) -> None:
    memory = MemoryService(journal)
    arguments: dict[str, object] = {"text": "a note", **kwargs}
    with pytest.raises(ValueError, match=message):
        memory.remember("acme", "u1", **arguments)  # type: ignore[arg-type]
    assert journal.stream_version(memory_stream("acme", "u1")) == 0
    with pytest.raises(ValueError, match="k must be at least 1"):
        memory.recall("acme", "u1", "x", k=0)


def test_memory_events_read_in_plain_language(journal: Journal) -> None:
    memory = MemoryService(journal)
    item = memory.remember("acme", "u1", "Prefers e-mail at carol@example.com", now=NOW)
    memory.forget("acme", "u1", item, reason="asked to")
    stored, forgotten = (explainers.explain(event) for event in journal.read_stream(memory_stream("acme", "u1")))
    assert stored.title == "Remembered a note about u1"
    assert stored.summary == "Prefers e-mail at [REDACTED:email]"
    assert stored.tags == {
        "user": "u1",
        "kept": f"until {(NOW + timedelta(days=1)).isoformat()}",
        "redacted": "email x1",
    }
    assert (forgotten.title, forgotten.summary) == ("Forgot a memory item", f"item {item}: asked to")


def test_the_cache_of_folded_users_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentjournal.agents import memory as memory_module

    monkeypatch.setattr(memory_module, "CACHED_USERS", 2)
    with Journal.open("memory://") as journal:
        memory = MemoryService(journal)
        for user in ("u1", "u2", "u3"):
            memory.remember("acme", user, f"refund for {user}")
            memory.recall("acme", user, "refund")
        assert list(memory._cache) == [memory_stream("acme", "u2"), memory_stream("acme", "u3")]
        assert [item.text for item in memory.recall("acme", "u1", "refund")] == ["refund for u1"]  # read again


def test_word_forms_match_through_light_stemming() -> None:
    assert tokenize("Refunds were refunded; shipping shipped") == ["refund", "refund", "ship", "ship"]
    with Journal.open("memory://") as journal:
        memory = MemoryService(journal)
        item = memory.remember("acme", "u1", "Two refunds are pending")
        assert [found.item_id for found in memory.recall("acme", "u1", "was it refunded?")] == [item]
