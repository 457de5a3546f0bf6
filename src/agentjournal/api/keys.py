"""API keys per tenant: who may call the gateway, for which tenant, with which roles.

A key has a public id (`ajk_` and 12 hex digits, safe to show and log) and a secret (`ajs_` and
43 URL-safe characters, 256 random bits) that is returned once, by `create`, and never stored:
the table `aj_api_keys` keeps its SHA-256. A fast hash is right for a high-entropy random secret
(nothing to brute-force, unlike a password; GitHub and Stripe do the same) and lets
`authenticate` find the key by an indexed lookup.

Every create and revoke is also an event (`ApiKeyCreated`, `ApiKeyRevoked`) on the stream
`api-keys`, naming the key, tenant, roles, name and actor, never the secret or its hash, so the
audit trail is in the journal. The table and the events are two writes, not one transaction:
the event of a create is appended before its row (a crash in between leaves an audit record of a
key that cannot authenticate, never a working key without one), and a revoke updates the row
first (a crash in between leaves a revoked key; revoking it again appends the missing event).

Reading never writes: `list` and `authenticate` on a journal whose keys table was never created
find no keys.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast, get_args

from agentjournal.journal import Journal, JournalError, NewEvent, RecordedEvent
from agentjournal.journal.backends.sql import SQLJournal
from agentjournal.journal.context import current_context
from agentjournal.journal.errors import AgentJournalError
from agentjournal.journal.schema import Component

Role = Literal["read", "approve", "run", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
"""Every role; `admin` implies the others."""
KEYS_STREAM: Final = "api-keys"
"""The stream holding the audit trail of every key: ApiKeyCreated and ApiKeyRevoked."""
API_KEY_CREATED: Final = "ApiKeyCreated"
API_KEY_REVOKED: Final = "ApiKeyRevoked"
KEY_ID_PREFIX: Final = "ajk_"
SECRET_PREFIX: Final = "ajs_"
MAX_NAME_LENGTH: Final = 200

MIGRATIONS = Component("api", "agentjournal.api")
"""aj_api_keys."""
_TABLE_MIGRATION = f"{MIGRATIONS.name}/0001_api_keys"
_EVENT_NAMESPACE = uuid.UUID("0f9b7c1e-5a3d-4e8b-9c2f-7d41a6e3b5c8")
"""The UUID namespace of the keys' event ids (uuid5 of the key id): a retried write stores nothing twice."""
_KEY_ID = re.compile(r"ajk_[0-9a-f]{12}")
_SECRET = re.compile(r"ajs_[A-Za-z0-9_-]{43}")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}")
_UNKNOWN = "unknown or revoked API key"
"""The same message for both, so a caller cannot tell a revoked key from one that never existed."""


class ApiKeyError(JournalError):
    """A request about API keys that cannot be done: a bad tenant id, role or name, an unknown key id."""


class AuthError(AgentJournalError):
    """A secret that authenticates nobody: malformed, unknown or revoked."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who an authenticated secret belongs to: the key, its tenant and its roles."""

    key_id: str
    tenant_id: str
    roles: tuple[Role, ...]

    def has_role(self, role: Role) -> bool:
        """Whether this principal may act as `role` (`admin` may act as every role)."""
        return role in self.roles or "admin" in self.roles


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as `list` shows it: never its secret, nor the secret's hash."""

    key_id: str
    tenant_id: str
    name: str
    roles: tuple[Role, ...]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """What `create` returns: the key, and its secret, which nothing can show again."""

    key: KeyInfo
    secret: str = field(repr=False)

    @property
    def key_id(self) -> str:
        return self.key.key_id


class ApiKeys:
    """Create, authenticate, list and revoke the API keys kept in the journal's database."""

    def __init__(self, journal: Journal) -> None:
        if not isinstance(journal, SQLJournal):
            raise ApiKeyError(
                f"API keys live in the journal's database; the {journal.backend_name} backend has none "
                "(use sqlite://, postgresql:// or mysql://)"
            )
        self.journal = journal
        self._sql = journal.sql_dialect.sql
        self._now = journal.sql_dialect.now

    def create(self, tenant_id: str, roles: Iterable[str], name: str, *, by: str | None = None) -> CreatedKey:
        """A new key for `tenant_id` with `roles`; its secret is in the result and nowhere else.

        `by` is the actor recorded on the ApiKeyCreated event (default: the ambient context's actor).
        """
        tenant_id, chosen, name, actor = _tenant(tenant_id), _roles(roles), _name(name), _actor(by)
        key_id = f"{KEY_ID_PREFIX}{secrets.token_hex(6)}"
        secret = f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}"
        MIGRATIONS.migrate(self.journal)
        self.journal.append(
            KEYS_STREAM,
            _event(API_KEY_CREATED, key_id=key_id, tenant_id=tenant_id, roles=chosen, name=name, actor=actor),
        )
        with self.journal.transaction() as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO aj_api_keys (key_id, tenant_id, name, roles, secret_hash, created_at, created_by) "
                    f"VALUES (?, ?, ?, ?, ?, {self._now}, ?)"
                ),
                (key_id, tenant_id, name, " ".join(chosen), _hash(secret), actor),
            )
        return CreatedKey(self._info(key_id), secret)

    def authenticate(self, secret: str) -> Principal:
        """The principal of an active key's secret; AuthError for anything else."""
        if not isinstance(secret, str) or _SECRET.fullmatch(secret) is None:
            raise AuthError(f"not an API key: a secret is {SECRET_PREFIX} and 43 URL-safe characters")
        if not self._has_table():
            raise AuthError(_UNKNOWN)
        digest = _hash(secret)
        rows = self.journal.query(
            self._sql(
                "SELECT key_id, tenant_id, roles, secret_hash, revoked_at FROM aj_api_keys WHERE secret_hash = ?"
            ),
            (digest,),
        )
        if not rows or not hmac.compare_digest(str(rows[0][3]), digest) or rows[0][4] is not None:
            raise AuthError(_UNKNOWN)
        key_id, tenant_id, roles = rows[0][0], rows[0][1], rows[0][2]
        return Principal(key_id, tenant_id, _stored_roles(roles))

    def list(self, tenant_id: str | None = None) -> list[KeyInfo]:
        """Every key (of `tenant_id` only, when given), revoked ones too, oldest first."""
        if tenant_id is not None:
            tenant_id = _tenant(tenant_id)
        if not self._has_table():
            return []
        where, params = (" WHERE tenant_id = ?", (tenant_id,)) if tenant_id is not None else ("", ())
        rows = self.journal.query(self._sql(f"{_SELECT}{where} ORDER BY created_at, key_id"), params)
        return [_key_info(row) for row in rows]

    def get(self, key_id: str) -> KeyInfo:
        """One key by its id; ApiKeyError when there is none."""
        _key_id(key_id)
        if not self._has_table():
            raise ApiKeyError(f"no API key {key_id} (`agentjournal keys list` shows them)")
        return self._info(key_id)

    def revoke(self, key_id: str, *, by: str | None = None) -> KeyInfo:
        """Revoke a key at once: its secret authenticates nobody from now on.

        Revoking a revoked key changes nothing (and appends its ApiKeyRevoked event if a crash
        kept it from the journal). `by` is the actor recorded (default: the ambient context's actor).
        """
        actor = _actor(by)
        key = self.get(key_id)
        if key.revoked_at is None:
            with self.journal.transaction() as cursor:
                cursor.execute(
                    self._sql(
                        f"UPDATE aj_api_keys SET revoked_at = {self._now}, revoked_by = ? "
                        "WHERE key_id = ? AND revoked_at IS NULL"
                    ),
                    (actor, key_id),
                )
            key = self._info(key_id)
        event = _event(
            API_KEY_REVOKED,
            key_id=key.key_id,
            tenant_id=key.tenant_id,
            roles=key.roles,
            name=key.name,
            actor=key.revoked_by or actor,
        )
        self.journal.append(KEYS_STREAM, event)  # a retry of the same event id and content is a no-op
        return key

    def history(self) -> builtins.list[RecordedEvent]:
        """The audit trail: every ApiKeyCreated and ApiKeyRevoked, in order."""
        return self.journal.read_stream(KEYS_STREAM) if self.journal.stream_version(KEYS_STREAM) else []

    def _info(self, key_id: str) -> KeyInfo:
        rows = self.journal.query(self._sql(f"{_SELECT} WHERE key_id = ?"), (key_id,))
        if not rows:
            raise ApiKeyError(f"no API key {key_id} (`agentjournal keys list` shows them)")
        return _key_info(rows[0])

    def _has_table(self) -> bool:
        return _TABLE_MIGRATION not in MIGRATIONS.pending(self.journal)


_SELECT = "SELECT key_id, tenant_id, name, roles, created_at, created_by, revoked_at, revoked_by FROM aj_api_keys"


def _key_info(row: Any) -> KeyInfo:
    return KeyInfo(
        key_id=row[0],
        tenant_id=row[1],
        name=row[2],
        roles=_stored_roles(row[3]),
        created_at=_time(row[4]),
        created_by=row[5],
        revoked_at=None if row[6] is None else _time(row[6]),
        revoked_by=row[7],
    )


def _event(kind: str, *, key_id: str, tenant_id: str, roles: tuple[Role, ...], name: str, actor: str) -> NewEvent:
    return NewEvent(
        kind,
        {"key_id": key_id, "tenant_id": tenant_id, "roles": list(roles), "name": name, "actor": actor},
        event_id=str(uuid.uuid5(_EVENT_NAMESPACE, f"{kind}\x00{key_id}")),
        actor=actor,
        tenant_id=tenant_id,
    )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _time(seconds: Any) -> datetime:
    return datetime.fromtimestamp(float(seconds), UTC)


def _tenant(tenant_id: object) -> str:
    if not isinstance(tenant_id, str) or _TENANT.fullmatch(tenant_id) is None:
        raise ApiKeyError(
            f"not a tenant id: {tenant_id!r} (1 to 200 letters, digits and . _ : @ -, starting with a letter or digit)"
        )
    return tenant_id


def _roles(roles: Iterable[str]) -> tuple[Role, ...]:
    if isinstance(roles, str):
        roles = [roles]
    given = list(roles)
    unknown = [role for role in given if role not in ROLES]
    if unknown:
        raise ApiKeyError(f"unknown role {unknown[0]!r}: the roles are {', '.join(ROLES)} (admin implies the others)")
    if not given:
        raise ApiKeyError(f"a key needs at least one role: {', '.join(ROLES)}")
    return tuple(role for role in ROLES if role in given)


def _stored_roles(text: str) -> tuple[Role, ...]:
    return tuple(cast(Role, role) for role in text.split())


def _name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ApiKeyError("a key needs a name that says what uses it, e.g. 'billing-dashboard'")
    if len(name) > MAX_NAME_LENGTH or not name.isprintable() or name != name.strip():
        raise ApiKeyError(
            f"not a key name: {name[:40]!r} (up to {MAX_NAME_LENGTH} printable characters, no space at either end)"
        )
    return name


def _actor(by: str | None) -> str:
    actor = by if by is not None else current_context().actor or "unknown"
    if not isinstance(actor, str) or not actor.strip() or len(actor) > 255 or not actor.isprintable():
        raise ApiKeyError(f"not an actor: {actor!r} (who creates or revokes the key, e.g. a user name)")
    return actor


def _key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or _KEY_ID.fullmatch(key_id) is None:
        raise ApiKeyError(f"not an API key id: {key_id!r} (a key id is {KEY_ID_PREFIX} and 12 hex digits)")
    return key_id
