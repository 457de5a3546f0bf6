"""Seed 001's Memory Service: per tenant and user, redacted, expiring, retrieved by relevance.

Memory is event-sourced on the journal (so it works on every backend): one stream per tenant and
user, `memory-<tenant>-<sha256 of the user id>` (the tenant with `%` and `-` percent-escaped), so
a user id never appears in a stream id, the one place nothing can be redacted later. It holds
MemoryStored and MemoryForgotten events (the run contract's). PII and secrets are redacted before
the event is built, so the journal never sees them; the event records which kinds were removed.
Items stored before stream ids were hashed (`memory-<tenant>-<user>`) are still read.

Every item expires unless the agent opts in to long-term memory (`long_term=True`). Retrieval
scores the user's live items against the task with BM25 and returns only those that share terms
with it, best first.

The journal is immutable: an expired or forgotten item is hidden from recall, and its (already
redacted) text stays in the stream, with the MemoryForgotten event saying when and why.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from agentjournal.agents.redaction import Finding, Redactor
from agentjournal.agents.tools import Tool, current_run, tool
from agentjournal.journal import Journal, NewEvent, RecordedEvent
from agentjournal.journal.errors import AgentJournalError
from agentjournal.journal.ids import uuid7

__all__ = [
    "MEMORY_FORGOTTEN",
    "MEMORY_STORED",
    "MemoryItem",
    "MemoryItemNotFound",
    "MemoryService",
    "memory_stream",
    "remember_tool",
]

MEMORY_STORED = "MemoryStored"
MEMORY_FORGOTTEN = "MemoryForgotten"
DEFAULT_TTL = timedelta(days=1)
DEFAULT_TENANT = "default"
"""The tenant of memory items of runs started without one."""
CACHED_USERS = 1024
"""How many users' folded memories a service keeps; others are read again from the journal."""

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_STOPWORD_TEXT = (
    "a an and are as at be but by did do does for from had has have he her his how i if in into is it "
    "its me my no not of on or our she so that the their them then there these they this to was we were "
    "what when where which who why will with you your"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


class MemoryItemNotFound(AgentJournalError, LookupError):
    pass


@dataclass(frozen=True)
class MemoryItem:
    item_id: str
    tenant_id: str
    user_id: str
    text: str
    tags: tuple[str, ...]
    long_term: bool
    created_at: datetime
    expires_at: datetime | None
    redactions: tuple[Finding, ...] = ()
    score: float = 0.0

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def memory_stream(tenant_id: str, user_id: str) -> str:
    """The stream of one user's memory: the tenant, and a stable hash of the user id (never the id)."""
    _escape(user_id, "user_id")
    return f"memory-{_escape(tenant_id, 'tenant_id')}-{hashlib.sha256(user_id.encode()).hexdigest()[:32]}"


def _legacy_stream(tenant_id: str, user_id: str) -> str:
    """Where items were stored before stream ids were hashed."""
    return f"memory-{_escape(tenant_id, 'tenant_id')}-{_escape(user_id, 'user_id')}"


def _escape(part: str, what: str) -> str:
    if not isinstance(part, str) or not part:
        raise ValueError(f"{what} must be a non-empty string, got {part!r}")
    return part.replace("%", "%25").replace("-", "%2D")


def tokenize(text: str) -> list[str]:
    """Lower-cased words without stop words, lightly stemmed so "refunds" and "refunded" find "refund"."""
    return [_stem(token) for token in _TOKEN.findall(text.lower()) if token not in _STOPWORDS]


def _stem(word: str) -> str:
    if word.endswith("ss"):
        return word
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            if suffix in ("ing", "ed") and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
                stem = stem[:-1]  # shipped, shipping -> ship
            return stem
    return word


@dataclass
class _UserMemory:
    """One user's items folded from their stream, up to `version`."""

    version: int = 0
    legacy_version: int = 0
    items: dict[str, MemoryItem] = field(default_factory=dict)
    terms: dict[str, Counter[str]] = field(default_factory=dict)
    """Each item's term counts (text and tags), computed once when the item is folded in."""


class MemoryService:
    """Remember, recall and forget per tenant and user; every change is an event in the journal."""

    def __init__(self, journal: Journal, *, redactor: Redactor | None = None):
        self.journal = journal
        self.redactor = redactor if redactor is not None else Redactor()
        self._cache: OrderedDict[str, _UserMemory] = OrderedDict()
        self._lock = threading.Lock()

    def remember(
        self,
        tenant_id: str,
        user_id: str,
        text: str,
        *,
        ttl: timedelta | None = DEFAULT_TTL,
        long_term: bool = False,
        tags: Iterable[str] = (),
        now: datetime | None = None,
    ) -> str:
        """Store an item (redacted) and return its id. Without `long_term=True` it always expires."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a memory item needs non-empty text")
        if ttl is not None and ttl <= timedelta(0):
            raise ValueError(f"ttl must be positive, got {ttl}")
        if ttl is None and not long_term:
            raise ValueError("an item without a TTL is long-term memory, which is opt-in: pass long_term=True")
        now = _aware(now) if now is not None else datetime.now(UTC)
        clean_text, findings = self.redactor.redact_text(text)
        clean_tags, tag_findings = self.redactor.redact([str(tag) for tag in tags])
        counts = Counter({finding.kind: finding.count for finding in findings})
        counts.update({finding.kind: finding.count for finding in tag_findings})
        item_id = uuid7()
        data: dict[str, Any] = {
            "item_id": item_id,
            "user_id": user_id,
            "text": clean_text,
            "tags": clean_tags,
            "long_term": long_term,
            "created_at": now.isoformat(),
            "expires_at": (now + ttl).isoformat() if ttl is not None else None,
            "redactions": [{"kind": kind, "count": counts[kind]} for kind in sorted(counts)],
        }
        stream = memory_stream(tenant_id, user_id)
        self.journal.append(stream, NewEvent(MEMORY_STORED, data, event_id=item_id, tenant_id=tenant_id))
        return item_id

    def recall(
        self, tenant_id: str, user_id: str, query: str, *, k: int = 5, now: datetime | None = None
    ) -> list[MemoryItem]:
        """The `k` live items most relevant to `query` (BM25); items sharing no term with it are left out."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        now = _aware(now) if now is not None else datetime.now(UTC)
        memory = self._load(tenant_id, user_id)
        live = [item for item in memory.items.values() if not item.expired(now)]
        terms = set(tokenize(query))
        if not live or not terms:
            return []
        documents = [memory.terms[item.item_id] for item in live]
        lengths = [sum(doc.values()) for doc in documents]
        average = sum(lengths) / len(documents) or 1.0
        frequency = Counter(term for doc in documents for term in terms & doc.keys())
        n = len(documents)
        idf = {term: math.log(1 + (n - count + 0.5) / (count + 0.5)) for term, count in frequency.items()}
        k1, b = 1.5, 0.75
        scored: list[tuple[float, MemoryItem]] = []
        for item, doc, length in zip(live, documents, lengths, strict=True):
            norm = k1 * (1 - b + b * length / average)
            score = 0.0
            for term, weight in idf.items():
                tf = doc.get(term)
                if tf:
                    score += weight * tf * (k1 + 1) / (tf + norm)
            if score > 0:
                scored.append((round(score, 6), item))
        best = heapq.nsmallest(k, scored, key=lambda pair: (-pair[0], -pair[1].created_at.timestamp(), pair[1].item_id))
        return [replace(item, score=score) for score, item in best]

    def items(
        self, tenant_id: str, user_id: str, *, now: datetime | None = None, include_expired: bool = False
    ) -> list[MemoryItem]:
        """The user's items that are not forgotten (and not expired, unless asked), oldest first."""
        now = _aware(now) if now is not None else datetime.now(UTC)
        memory = self._load(tenant_id, user_id)
        return [item for item in memory.items.values() if include_expired or not item.expired(now)]

    def forget(self, tenant_id: str, user_id: str, item_id: str, *, reason: str = "") -> None:
        """Remove an item from recall (the journal keeps that it was forgotten, and why)."""
        if item_id not in self._load(tenant_id, user_id).items:
            raise MemoryItemNotFound(f"no memory item {item_id} for user {user_id!r} of tenant {tenant_id!r}")
        self._forget(tenant_id, user_id, [item_id], reason)

    def forget_all(self, tenant_id: str, user_id: str, *, reason: str = "") -> int:
        """Forget every item of a user; returns how many."""
        ids = list(self._load(tenant_id, user_id).items)
        if ids:
            self._forget(tenant_id, user_id, ids, reason)
        return len(ids)

    def _forget(self, tenant_id: str, user_id: str, item_ids: list[str], reason: str) -> None:
        clean_reason, _ = self.redactor.redact_text(reason)
        events = [
            NewEvent(MEMORY_FORGOTTEN, {"item_id": item_id, "reason": clean_reason}, tenant_id=tenant_id)
            for item_id in item_ids
        ]
        self.journal.append(memory_stream(tenant_id, user_id), events)

    def _load(self, tenant_id: str, user_id: str) -> _UserMemory:
        """Fold the user's stream (after the legacy one), reading only events appended since the last call."""
        stream = memory_stream(tenant_id, user_id)
        legacy = _legacy_stream(tenant_id, user_id)
        with self._lock:
            memory = self._cache.pop(stream, None) or _UserMemory()
            self._cache[stream] = memory  # most recently used last; the least recent goes first
            if len(self._cache) > CACHED_USERS:
                self._cache.popitem(last=False)
            for event in self.journal.read_stream(legacy, memory.legacy_version + 1):
                _apply(memory, event, tenant_id)
                memory.legacy_version = event.version
            for event in self.journal.read_stream(stream, memory.version + 1):
                _apply(memory, event, tenant_id)
                memory.version = event.version
            return _UserMemory(memory.version, memory.legacy_version, dict(memory.items), dict(memory.terms))


def _apply(memory: _UserMemory, event: RecordedEvent, tenant_id: str) -> None:
    data = event.data
    if event.type == MEMORY_STORED:
        expires = data.get("expires_at")
        memory.items[data["item_id"]] = MemoryItem(
            item_id=data["item_id"],
            tenant_id=event.tenant_id or tenant_id,
            user_id=data["user_id"],
            text=data["text"],
            tags=tuple(data.get("tags", ())),
            long_term=bool(data.get("long_term")),
            created_at=datetime.fromisoformat(data["created_at"]),
            expires_at=datetime.fromisoformat(expires) if expires else None,
            redactions=tuple(Finding(entry["kind"], entry["count"]) for entry in data.get("redactions", ())),
        )
        memory.terms[data["item_id"]] = Counter(tokenize(" ".join([data["text"], *data.get("tags", ())])))
    elif event.type == MEMORY_FORGOTTEN:
        memory.items.pop(data["item_id"], None)
        memory.terms.pop(data["item_id"], None)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"time {moment.isoformat()} has no time zone; give an aware datetime (UTC)")
    return moment.astimezone(UTC)


def remember_tool(service: MemoryService) -> Tool:
    """The `remember` tool an agent gets with `memory_writes=True`: it stores a note about the run's user."""

    @tool(name="remember", side_effecting=True)
    def remember(note: str, long_term: bool = False) -> dict[str, Any]:
        """Remember a short note about this user for later conversations (no secrets, no personal data)."""
        run = current_run()
        if run is None or not run.user_id:
            raise ValueError("remember needs a run with a user (start it with user_id=...)")
        ttl = None if long_term else DEFAULT_TTL
        item_id = service.remember(run.tenant_id or DEFAULT_TENANT, run.user_id, note, ttl=ttl, long_term=long_term)
        return {"remembered": item_id, "long_term": long_term}

    return remember
