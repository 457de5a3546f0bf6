"""API keys per tenant on SQLite and PostgreSQL: create, authenticate, list, revoke, and what is never stored."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import Result

from agentjournal import schema
from agentjournal.api import KEYS_STREAM, ROLES, ApiKeyError, ApiKeys, AuthError, Principal
from agentjournal.journal import Journal, JournalError
from agentjournal.journal.context import event_context


@pytest.fixture
def journal(sqlite_or_postgres_url: str) -> Iterator[Journal]:
    with Journal.open(sqlite_or_postgres_url) as opened:
        yield opened


def _table(journal: Journal) -> list[tuple[object, ...]]:
    return [tuple(row) for row in journal.query("SELECT * FROM aj_api_keys")]  # type: ignore[attr-defined]


def test_create_authenticate_list_and_revoke(journal: Journal) -> None:
    keys = ApiKeys(journal)
    created = keys.create("acme", ["approve", "read"], "support-dashboard", by="alice")
    assert re.fullmatch(r"ajk_[0-9a-f]{12}", created.key_id)
    assert re.fullmatch(r"ajs_[A-Za-z0-9_-]{43}", created.secret)
    assert created.secret not in repr(created)
    key = created.key
    assert (key.tenant_id, key.roles, key.name, key.created_by, key.active) == (
        "acme",
        ("read", "approve"),  # in ROLES order, whatever order they were given in
        "support-dashboard",
        "alice",
        True,
    )
    principal = keys.authenticate(created.secret)
    assert principal == Principal(created.key_id, "acme", ("read", "approve"))
    assert principal.has_role("approve") and not principal.has_role("run") and not principal.has_role("admin")
    assert keys.list() == [key] and keys.get(created.key_id) == key

    revoked = keys.revoke(created.key_id, by="bob")
    assert not revoked.active and revoked.revoked_by == "bob" and revoked.revoked_at is not None
    assert revoked.revoked_at >= key.created_at
    with pytest.raises(AuthError, match=r"^unknown or revoked API key$"):
        keys.authenticate(created.secret)
    assert keys.revoke(created.key_id, by="carol") == revoked  # idempotent: the first revocation stands
    assert keys.list() == [revoked]


def test_admin_implies_every_role(journal: Journal) -> None:
    keys = ApiKeys(journal)
    principal = keys.authenticate(keys.create("acme", ["admin"], "ops").secret)
    assert principal.roles == ("admin",) and all(principal.has_role(role) for role in ROLES)


def test_a_revoked_and_an_unknown_key_get_the_same_error_and_a_malformed_one_is_told_so(journal: Journal) -> None:
    keys = ApiKeys(journal)
    created = keys.create("acme", ["read"], "ci")
    keys.revoke(created.key_id, by="alice")
    messages = []
    for secret in (created.secret, "ajs_" + "A" * 43):
        with pytest.raises(AuthError) as caught:
            keys.authenticate(secret)
        messages.append(str(caught.value))
    assert messages == ["unknown or revoked API key"] * 2
    for malformed in ("", "ajs_short", created.secret + "x", "Bearer " + created.secret, created.key_id, None):
        with pytest.raises(AuthError, match="not an API key") as caught:
            keys.authenticate(malformed)  # type: ignore[arg-type]
        assert created.secret not in str(caught.value)


def test_a_tenant_lists_only_its_own_keys(journal: Journal) -> None:
    keys = ApiKeys(journal)
    a = keys.create("tenant-a", ["read"], "a-reader")
    b = keys.create("tenant-b", ["run"], "b-runner")
    assert [key.key_id for key in keys.list("tenant-a")] == [a.key_id]
    assert [key.key_id for key in keys.list("tenant-b")] == [b.key_id]
    assert keys.list("tenant-c") == []
    assert {key.key_id for key in keys.list()} == {a.key_id, b.key_id}
    assert keys.authenticate(b.secret).tenant_id == "tenant-b"


def test_the_table_holds_the_hash_and_never_the_secret(journal: Journal) -> None:
    keys = ApiKeys(journal)
    created = keys.create("acme", ["read"], "ci")
    [row] = _table(journal)
    cells = " ".join(str(cell) for cell in row)
    assert created.secret not in cells and created.secret.removeprefix("ajs_") not in cells
    assert hashlib.sha256(created.secret.encode()).hexdigest() in row
    assert "secret" not in repr(keys.list()) and hashlib.sha256(created.secret.encode()).hexdigest() not in repr(
        keys.list()
    )


def test_every_create_and_revoke_is_an_event_on_the_keys_stream_without_the_secret(journal: Journal) -> None:
    keys = ApiKeys(journal)
    with event_context(correlation_id="req-1"):
        created = keys.create("acme", ["read", "run"], "ci", by="alice")
    keys.revoke(created.key_id, by="bob")
    keys.revoke(created.key_id, by="bob")  # nothing appended twice
    events = journal.read_stream(KEYS_STREAM)
    assert [(event.type, event.actor, event.tenant_id) for event in events] == [
        ("ApiKeyCreated", "alice", "acme"),
        ("ApiKeyRevoked", "bob", "acme"),
    ]
    assert events[0].correlation_id == "req-1"
    for event in events:
        assert event.data == {
            "key_id": created.key_id,
            "tenant_id": "acme",
            "roles": ["read", "run"],
            "name": "ci",
            "actor": event.actor,
        }
        stored = f"{event.data_json!r} {event.metadata_json!r}"
        assert created.secret not in stored and hashlib.sha256(created.secret.encode()).hexdigest() not in stored
    assert keys.history() == events
    assert journal.verify(KEYS_STREAM).ok


def test_a_revocation_lost_before_its_event_is_recorded_by_revoking_again(journal: Journal) -> None:
    keys = ApiKeys(journal)
    created = keys.create("acme", ["read"], "ci", by="alice")
    p = journal.param  # type: ignore[attr-defined]
    with journal.transaction() as cursor:  # type: ignore[attr-defined]  # as if the process died after the UPDATE
        cursor.execute(f"UPDATE aj_api_keys SET revoked_at = 1, revoked_by = {p}", ("bob",))
    assert [event.type for event in journal.read_stream(KEYS_STREAM)] == ["ApiKeyCreated"]
    keys.revoke(created.key_id, by="carol")
    [_, revoked] = journal.read_stream(KEYS_STREAM)
    assert (revoked.type, revoked.actor) == ("ApiKeyRevoked", "bob")


@pytest.mark.parametrize(
    ("given", "error"),
    [
        (("acme", ["owner"], "ci", "alice"), "unknown role 'owner': the roles are read, approve, run, admin"),
        (("acme", [], "ci", "alice"), "at least one role"),
        (("acme corp", ["read"], "ci", "alice"), "not a tenant id: 'acme corp'"),
        (("", ["read"], "ci", "alice"), "not a tenant id: ''"),
        (("x" * 201, ["read"], "ci", "alice"), "not a tenant id"),
        (("-acme", ["read"], "ci", "alice"), "not a tenant id"),
        (("acme", ["read"], "", "alice"), "needs a name"),
        (("acme", ["read"], " ci", "alice"), "not a key name"),
        (("acme", ["read"], "c\ni", "alice"), "not a key name"),
        (("acme", ["read"], "x" * 201, "alice"), "not a key name"),
        (("acme", ["read"], "ci", " "), "not an actor"),
    ],
)
def test_bad_roles_tenants_names_and_actors_are_refused_before_anything_is_written(
    journal: Journal, given: tuple[str, list[str], str, str], error: str
) -> None:
    tenant, roles, name, by = given
    keys = ApiKeys(journal)
    with pytest.raises(ApiKeyError, match=re.escape(error)):
        keys.create(tenant, roles, name, by=by)
    assert keys.list() == [] and journal.stream_version(KEYS_STREAM) == 0


def test_unknown_and_malformed_key_ids(journal: Journal) -> None:
    keys = ApiKeys(journal)
    with pytest.raises(ApiKeyError, match="no API key ajk_000000000000"):
        keys.revoke("ajk_000000000000", by="alice")
    keys.create("acme", ["read"], "ci")
    with pytest.raises(ApiKeyError, match="not an API key id: 'nope'"):
        keys.get("nope")
    with pytest.raises(ApiKeyError, match="no API key ajk_000000000000"):
        keys.get("ajk_000000000000")
    with pytest.raises(ApiKeyError, match="not a tenant id"):
        keys.list("no such tenant")


def test_reading_creates_no_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    with Journal.open(url, create=True) as journal:
        keys = ApiKeys(journal)
        assert keys.list() == [] and keys.list("acme") == [] and keys.history() == []
        with pytest.raises(AuthError, match=r"^unknown or revoked API key$"):
            keys.authenticate("ajs_" + "A" * 43)
        with pytest.raises(ApiKeyError, match="no API key"):
            keys.revoke("ajk_000000000000", by="alice")
        assert "api/0001_api_keys" in schema.pending(journal)
        keys.create("acme", ["read"], "ci")
        assert "api/0001_api_keys" not in schema.pending(journal)


def test_the_memory_backend_has_no_keys_table() -> None:
    with Journal.open("memory://") as journal, pytest.raises(JournalError, match="use sqlite://, postgresql://"):
        ApiKeys(journal)


# ----- the CLI ----------------------------------------------------------------------------


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def _error(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and message in result.stderr, result.output


def test_cli_create_list_revoke(sqlite_or_postgres_url: str, invoke: Callable[..., Result]) -> None:
    url = sqlite_or_postgres_url
    assert "no API keys" in _ok(invoke(url, "keys", "list"))
    created = invoke(url, "keys", "create", "--tenant", "acme", "--role", "read", "--role", "run", "--name", "ci")
    [line, secret] = _ok(created).splitlines()
    key_id = line.split()[3]
    assert re.fullmatch(r"ajk_[0-9a-f]{12}", key_id) and line.endswith("(roles: read, run)")
    assert "not shown again" in created.stderr
    with Journal.open(url) as journal:
        assert ApiKeys(journal).authenticate(secret).key_id == key_id

    as_json = invoke(url, "keys", "create", "--tenant", "globex", "--role", "admin", "--name", "ops", "--json")
    [record] = [orjson.loads(line) for line in _ok(as_json).splitlines()]
    assert record["tenant_id"] == "globex" and record["secret"].startswith("ajs_") and record["created_by"]

    listed = _ok(invoke(url, "keys", "list"))
    assert key_id in listed and record["key_id"] in listed and secret not in listed
    only_acme = _ok(invoke(url, "keys", "list", "--tenant", "acme", "--json"))
    assert key_id in only_acme and record["key_id"] not in only_acme and "secret" not in only_acme

    assert f"revoked {key_id}" in _ok(invoke(url, "keys", "revoke", key_id, "--by", "bob"))
    assert "already revoked" in _ok(invoke(url, "keys", "revoke", key_id))
    assert '"status":"revoked"' in _ok(invoke(url, "keys", "list", "--tenant", "acme", "--json"))
    with Journal.open(url) as journal:
        with pytest.raises(AuthError):
            ApiKeys(journal).authenticate(secret)
        assert [event.actor for event in journal.read_stream(KEYS_STREAM)][-1] == "bob"


def test_cli_errors_are_one_line(sqlite_or_postgres_url: str, invoke: Callable[..., Result], tmp_path: Path) -> None:
    url = sqlite_or_postgres_url
    create = ("keys", "create", "--tenant", "acme", "--name", "ci")
    _error(invoke(url, *create, "--role", "owner"), "unknown role 'owner'")
    _error(invoke(url, "keys", "create", "--tenant", "a b", "--role", "read", "--name", "ci"), "not a tenant id")
    _error(invoke(url, "keys", "revoke", "ajk_000000000000"), "no API key ajk_000000000000")
    _error(invoke(url, "keys", "revoke", "nope"), "not an API key id")
    _error(invoke(f"sqlite:///{tmp_path / 'none.db'}", "keys", "list"), "no journal at")
    assert not (tmp_path / "none.db").exists()
    missing_role = invoke(url, *create)
    assert missing_role.exit_code == 2 and "--role" in missing_role.output
