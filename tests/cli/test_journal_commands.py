"""The journal commands, run in process on real databases."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from typer.testing import Result

from agentjournal import Journal, NewEvent
from agentjournal.cli.app import app, console
from agentjournal.quickstart import REFUND_CONVERSATION, STREAM_ID
from agentjournal.schema import COMPONENTS

Invoke = Callable[..., Result]


def _fill(url: str, streams: int = 3, events: int = 4) -> list[dict[str, object]]:
    """A few streams of a few events each; returns every event as exported."""
    with Journal.open(url) as journal:
        for number in range(1, streams + 1):
            journal.append(
                f"run-{number}",
                [NewEvent("Step", {"run": number, "step": step}, actor="agent") for step in range(events)],
                expected_version=0,
            )
        journal.append("other-1", [NewEvent("Noise", {"text": "ü → [bold]ok[/bold]"})])
        return [event.to_dict() for event in journal.iter_all()]


def _walk(command: Any, path: str = "agentjournal") -> list[tuple[str, Any]]:
    """Every command under the app, as (path, command); groups hold theirs in `commands`."""
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _walk(sub, f"{path} {name}")
    return found


def test_every_command_has_help_that_ends_with_an_example() -> None:
    commands = _walk(typer.main.get_command(app))
    assert len(commands) > 8  # the app and at least the journal commands
    missing = []
    for path, command in commands[1:]:
        if hasattr(command, "commands"):
            continue
        lines = [line.strip() for line in (command.help or "").strip().splitlines() if line.strip()]
        if len(lines) < 2 or not lines[-1].startswith("Example: agentjournal "):
            missing.append(path)
    assert not missing, f"commands without help text ending in 'Example: agentjournal …': {missing}"


def test_migrate_check_lists_pending_then_migrate_applies_them(invoke: Invoke, empty_sql_url: str) -> None:
    dialect = {"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql"}[empty_sql_url.split(":", 1)[0]]
    expected = [f"{component}/{name}" for component, name in _migration_files(dialect)]
    checked = invoke(empty_sql_url, "migrate", "--check")
    assert checked.exit_code == 1
    if empty_sql_url.startswith("sqlite"):  # not even a file yet, and --check does not make one
        assert "no journal at" in checked.stderr
        assert "(no such file); `agentjournal migrate` creates one" in checked.stderr
    else:
        assert f"{len(expected)} migration(s) pending (no journal yet" in checked.stdout
        assert [line.strip() for line in checked.stdout.splitlines()[1:]] == expected
    again = invoke(empty_sql_url, "migrate", "--check")  # --check changed nothing
    assert again.output == checked.output

    applied = invoke(empty_sql_url, "migrate")
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines() == [f"applied {name}" for name in expected]

    done = invoke(empty_sql_url, "migrate", "--check")
    assert done.exit_code == 0
    assert "the schema is up to date" in done.stdout
    assert invoke(empty_sql_url, "migrate").stdout == done.stdout


def _migration_files(dialect: str) -> list[tuple[str, str]]:
    """(component, migration) of every migration file in the source tree, in apply order."""
    found = []
    for component in COMPONENTS:
        folder = resources.files(component.package) / "migrations" / dialect
        names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
        found += [(component.name, name.removesuffix(".sql")) for name in names]
    return found


def test_every_package_with_migrations_is_a_migrated_component() -> None:
    """agentjournal.testing is left out: its widgets component only tests the migration runner."""
    source = Path(str(resources.files("agentjournal")))
    folders = {
        ".".join(("agentjournal", *path.parent.relative_to(source).parts))
        for path in source.rglob("migrations")
        if path.is_dir() and "testing" not in path.relative_to(source).parts
    }
    assert folders == {component.package for component in COMPONENTS}


def test_streams_lists_streams_with_a_prefix(invoke: Invoke, sqlite_url: str) -> None:
    _fill(sqlite_url)
    result = invoke(sqlite_url, "streams", "--prefix", "run-")
    assert result.exit_code == 0, result.output
    assert all(f"run-{number}" in result.stdout for number in (1, 2, 3))
    assert "other-1" not in result.stdout
    assert "3 stream(s) starting with 'run-'" in result.stdout


def test_events_shows_a_stream_as_a_table(invoke: Invoke, sqlite_url: str) -> None:
    _fill(sqlite_url)
    result = invoke(sqlite_url, "events", "run-2", "--from", "2", "--to", "3")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines() if "Step" in line]
    assert [row[:2] for row in rows] == [["2", "6"], ["3", "7"]]  # version, position
    assert all("agent" in row and '{"run":2,"step":' in " ".join(row) for row in rows)


def test_json_lines_output_for_scripts(invoke: Invoke, sqlite_url: str) -> None:
    expected = _fill(sqlite_url)
    events = invoke(sqlite_url, "events", "run-2", "--json")
    assert events.exit_code == 0, events.output
    assert [orjson.loads(line) for line in events.stdout.splitlines()] == expected[4:8]
    tailed = invoke(sqlite_url, "tail", "--after", "11", "--json")
    assert [orjson.loads(line) for line in tailed.stdout.splitlines()] == expected[11:]
    listed = invoke(sqlite_url, "streams", "--json")
    streams = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert [(info["stream_id"], info["version"]) for info in streams] == [
        ("other-1", 1),
        ("run-1", 4),
        ("run-2", 4),
        ("run-3", 4),
    ]
    assert all(info["created_at"].endswith("Z") for info in streams)


def test_events_of_an_unknown_stream_is_one_clear_error(invoke: Invoke, sqlite_url: str) -> None:
    result = invoke(sqlite_url, "events", "run-404")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: no stream 'run-404' in {sqlite_url}"


def test_tail_prints_events_after_a_position(invoke: Invoke, sqlite_url: str) -> None:
    _fill(sqlite_url)
    result = invoke(sqlite_url, "tail", "--after", "10")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["11", "12", "13"]
    assert "run-3@4" in lines[1]
    assert "other-1@1" in lines[2]
    assert '{"text":"ü → [bold]ok[/bold]"}' in lines[2]  # data is shown as it is, never as markup


def test_tail_follow_sees_events_appended_later(invoke: Invoke, sqlite_url: str) -> None:
    _fill(sqlite_url, streams=1, events=2)

    def append_later() -> None:
        time.sleep(0.5)
        with Journal.open(sqlite_url) as journal:
            journal.append("late-1", [NewEvent("Late", {"n": n}) for n in range(3)])

    writer = threading.Thread(target=append_later)
    writer.start()
    result = invoke(sqlite_url, "tail", "--follow", "--interval", "0.05", "--limit", "6")
    writer.join()
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["1", "2", "3", "4", "5", "6"]
    assert result.stdout.count("Late") == 3


def test_tail_follow_ends_cleanly_on_ctrl_c(sqlite_url: str) -> None:
    _fill(sqlite_url, streams=1, events=1)
    command = Path(sys.executable).parent / "agentjournal"
    process = subprocess.Popen(
        [str(command), "--db", sqlite_url, "tail", "--follow", "--interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    # Both stored events are printed before it starts polling.
    assert "run-1@1" in process.stdout.readline()
    assert "other-1@1" in process.stdout.readline()
    time.sleep(0.3)  # now it is polling
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert "stopped after position 2" in stderr


def test_verify_ok_and_tampered(invoke: Invoke, sqlite_url: str) -> None:
    _fill(sqlite_url)
    ok = invoke(sqlite_url, "verify")
    assert ok.exit_code == 0, ok.output
    assert "ok: 13 event(s) in 4 stream(s)" in ok.stdout

    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        conn.execute("DROP TRIGGER aj_events_no_update")
        conn.execute("""UPDATE aj_events SET data = '{"run":2,"step":9}' WHERE stream_id = 'run-2' AND version = 3""")
    broken = invoke(sqlite_url, "verify")
    assert broken.exit_code == 1
    assert "stream 'run-2' version 3 (position 7)" in broken.stderr
    assert "Traceback" not in broken.output
    assert invoke(sqlite_url, "verify", "--stream", "run-2").exit_code == 1
    other = invoke(sqlite_url, "verify", "--stream", "run-1")
    assert other.exit_code == 0
    assert "ok: 4 event(s) in 1 stream(s)" in other.stdout
    unknown = invoke(sqlite_url, "verify", "--stream", "run-9")
    assert unknown.exit_code == 1
    assert unknown.stderr.strip() == "error: stream 'run-9' does not exist"


def test_export_writes_json_lines_in_position_order(invoke: Invoke, sqlite_url: str, tmp_path: Path) -> None:
    expected = _fill(sqlite_url)
    target = tmp_path / "out.jsonl"
    to_file = invoke(sqlite_url, "export", "-o", str(target))
    assert to_file.exit_code == 0, to_file.output
    assert "exported 13 event(s)" in to_file.stderr
    assert [orjson.loads(line) for line in target.read_bytes().splitlines()] == expected

    to_stdout = invoke(sqlite_url, "export")
    assert to_stdout.exit_code == 0
    assert [orjson.loads(line) for line in to_stdout.stdout.splitlines()] == expected


def test_export_to_an_unwritable_place_is_one_clear_error(invoke: Invoke, sqlite_url: str, tmp_path: Path) -> None:
    _fill(sqlite_url)
    result = invoke(sqlite_url, "export", "-o", str(tmp_path / "missing" / "out.jsonl"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot write")
    assert "No such file or directory" in result.stderr


def test_import_moves_a_journal_and_its_hashes_still_verify(invoke: Invoke, sqlite_url: str, tmp_path: Path) -> None:
    expected = _fill(sqlite_url)
    dump = tmp_path / "dump.jsonl"
    assert invoke(sqlite_url, "export", "-o", str(dump)).exit_code == 0

    target = f"sqlite:///{tmp_path / 'copy.db'}"
    imported = invoke(target, "import", str(dump))
    assert imported.exit_code == 0, imported.output
    assert "imported 13 event(s)" in imported.stdout
    assert invoke(target, "verify").exit_code == 0
    with Journal.open(target) as copy:
        assert [event.to_dict() for event in copy.iter_all()] == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json\n", "dump.jsonl:1: not a JSON line"),
        (b"[1, 2]\n", "dump.jsonl:1: expected a JSON object, got list"),
        (b'{"event_id": "x"}\n', "dump.jsonl:1: not an exported envelope"),
    ],
)
def test_import_of_bad_input_is_one_clear_error(
    invoke: Invoke, sqlite_url: str, tmp_path: Path, content: bytes, message: str
) -> None:
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(content)
    result = invoke(sqlite_url, "import", str(dump))
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_import_refuses_a_changed_event_and_keeps_what_is_stored(
    invoke: Invoke, sqlite_url: str, tmp_path: Path
) -> None:
    records = _fill(sqlite_url, streams=2, events=2)
    records[2]["data"] = {"run": 2, "step": 99}  # the first event of run-2, changed after export
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    result = invoke(target, "import", str(dump))
    assert result.exit_code == 1
    assert f"{dump}:3 (stream 'run-2' version 1): its hash does not match its content" in result.stderr
    assert result.stderr.rstrip().endswith("; nothing imported")
    assert not (tmp_path / "copy.db").exists()  # a file that cannot be imported creates no journal
    assert invoke(sqlite_url, "import", str(dump)).exit_code == 1  # nor changes an existing one
    with Journal.open(sqlite_url) as journal:
        assert journal.head_position() == 5
        assert journal.verify().ok


def test_import_of_a_missing_file_is_a_usage_error(invoke: Invoke, sqlite_url: str, tmp_path: Path) -> None:
    result = invoke(sqlite_url, "import", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:////nonexistent-folder/x.db", "folder /nonexistent-folder does not exist"),
        ("oracle://db/x", "unknown journal URL scheme 'oracle'"),
        ("postgresql://nobody@127.0.0.1:1/x", "127.0.0.1"),
        ("mysql://root@127.0.0.1:1/x", "127.0.0.1"),
    ],
)
def test_a_database_that_cannot_be_opened_is_one_clear_line(invoke: Invoke, url: str, message: str) -> None:
    result = invoke(url, "streams")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_quickstart_writes_the_refund_conversation_and_is_idempotent(invoke: Invoke, sqlite_url: str) -> None:
    first = invoke(sqlite_url, "quickstart")
    assert first.exit_code == 0, first.output
    assert "verified: 6 events, hash chain intact" in first.stdout
    for event_type, actor, _ in REFUND_CONVERSATION:
        assert event_type in first.stdout
        assert actor in first.stdout

    again = invoke(sqlite_url, "quickstart")
    assert again.exit_code == 0, again.output
    with Journal.open(sqlite_url) as journal:
        stored = journal.read_stream(STREAM_ID)
        assert journal.head_position() == 6  # the second run stored nothing
        assert [(event.type, event.actor, event.data) for event in stored] == REFUND_CONVERSATION
        assert stored[0].causation_id is None
        assert all(event.causation_id == cause.event_id for cause, event in itertools.pairwise(stored))
        assert {event.correlation_id for event in stored} == {stored[0].event_id}
        assert journal.verify().ok


def test_quickstart_fits_an_80_column_terminal(
    invoke: Invoke, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "width", 80)
    result = invoke(sqlite_url, "quickstart")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 6  # one line per event
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert [row.split()[3] for row in rows] == [event_type for event_type, _, _ in REFUND_CONVERSATION]
    assert [row.split()[4] for row in rows[1:]] == ["v1", "v2", "v3", "v4", "v5"]  # the causal chain


def test_the_default_journal_is_a_sqlite_file_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {key: value for key, value in os.environ.items() if key != "AGENTJOURNAL_DB"}
    command = Path(sys.executable).parent / "agentjournal"
    result = subprocess.run(
        [str(command), "quickstart"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "agentjournal.db").exists()
    result = subprocess.run([str(command), "verify"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "ok: 6 event(s)" in result.stdout
    env["AGENTJOURNAL_DB"] = f"sqlite:///{tmp_path / 'other.db'}"
    result = subprocess.run([str(command), "verify"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 1  # AGENTJOURNAL_DB names a journal that is not there: reading creates none
    assert "no journal at" in result.stderr
    assert not (tmp_path / "other.db").exists()


@pytest.mark.parametrize("target", ["postgres_url", "mysql_url"])
def test_export_from_sqlite_import_into_a_server_verifies(
    invoke: Invoke, sqlite_url: str, target: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    server_url = str(request.getfixturevalue(target))
    expected = _fill(sqlite_url)
    assert invoke(sqlite_url, "quickstart").exit_code == 0
    dump = tmp_path / "dump.jsonl"
    assert invoke(sqlite_url, "export", "-o", str(dump)).exit_code == 0

    imported = invoke(server_url, "import", str(dump))
    assert imported.exit_code == 0, imported.output
    verified = invoke(server_url, "verify")
    assert verified.exit_code == 0, verified.output
    assert "ok: 19 event(s) in 5 stream(s)" in verified.stdout
    with Journal.open(server_url) as moved:
        assert [event.to_dict() for event in moved.iter_all()][:13] == expected
        assert [event.hash for event in moved.read_stream(STREAM_ID)] == [
            orjson.loads(line)["hash"] for line in dump.read_bytes().splitlines()[13:]
        ]
    # and back: the server's export is the same journal, line for line
    again = invoke(server_url, "export")
    assert again.stdout.encode().splitlines() == dump.read_bytes().splitlines()


def test_events_shows_data_that_looks_like_markup_as_it_is(invoke: Invoke, sqlite_url: str) -> None:
    with Journal.open(sqlite_url) as journal:
        journal.append("odd-1", [NewEvent("Noted", {"text": "[/bold] [red]x"}, actor="[bold]")])
    result = invoke(sqlite_url, "events", "odd-1")
    assert result.exit_code == 0, result.output
    assert "[/bold] [red]x" in result.stdout


# ----- nothing written where the user did not ask ---------------------------------------------


READING_COMMANDS = [("streams",), ("verify",), ("events", "run-1"), ("tail",), ("export",), ("migrate", "--check")]


@pytest.mark.parametrize("command", READING_COMMANDS, ids=" ".join)
def test_a_command_that_reads_creates_no_journal_at_a_typo(invoke: Invoke, tmp_path: Path, command: tuple[str]) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    result = invoke(url, *command)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: no journal at {url} (no such file); `agentjournal migrate` creates one "
        "(Journal.open(url, create=True))"
    )
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_another_applications_sqlite_file_is_left_as_it_is(invoke: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    before = path.read_bytes()
    url = f"sqlite:///{path}"
    for command in (("streams",), ("verify",), ("migrate",), ("quickstart",)):
        result = invoke(url, *command)
        assert result.exit_code == 1, command
        assert "another application's tables (users)" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert "pass --allow-other-tables to `agentjournal migrate`" in invoke(url, "migrate").stderr
    assert path.read_bytes() == before
    allowed = invoke(url, "migrate", "--allow-other-tables")
    assert allowed.exit_code == 0, allowed.output
    assert invoke(url, "quickstart").exit_code == 0
    assert invoke(url, "verify").exit_code == 0


def test_url_parameters_are_checked_and_mode_ro_only_reads(invoke: Invoke, sqlite_url: str) -> None:
    _fill(sqlite_url)
    unknown = invoke(f"{sqlite_url}?foo=bar", "streams")
    assert unknown.exit_code == 1
    assert unknown.stderr.strip().endswith("known parameters: mode, synchronous")
    read_only = f"{sqlite_url}?mode=ro"
    assert "4 stream(s)" in invoke(read_only, "streams").stdout
    assert invoke(read_only, "verify").exit_code == 0
    refused = invoke(read_only, "quickstart")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == f"error: {sqlite_url} is opened read-only (mode=ro): nothing can be written"
    assert "Traceback" not in refused.output
    fast = invoke(f"{sqlite_url}?synchronous=off", "quickstart")
    assert fast.exit_code == 0, fast.output


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_a_server_port_that_never_answers_is_one_clear_line_within_the_timeout(invoke: Invoke, scheme: str) -> None:
    from agentjournal.testing.databases import hung_port

    with hung_port() as port:
        started = time.monotonic()
        result = invoke(f"{scheme}://root@127.0.0.1:{port}/test?connect_timeout=1", "streams")
        assert time.monotonic() - started < 5
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach ")
    assert f"at 127.0.0.1:{port}: no " in result.stderr
    assert "(connect_timeout=1)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ----- imports: checked first, idempotent, finished by running them again ---------------------------


def test_importing_the_same_export_twice_changes_nothing(invoke: Invoke, sql_journal_url: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    Journal.open(source, create=True).close()
    expected = _fill(source)
    dump = tmp_path / "dump.jsonl"
    assert invoke(source, "export", "-o", str(dump)).exit_code == 0
    first = invoke(sql_journal_url, "import", str(dump))
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("imported 13 event(s) into ")
    again = invoke(sql_journal_url, "import", str(dump))
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("already imported: 13 event(s), nothing changed in ")
    with Journal.open(sql_journal_url) as journal:
        assert [event.to_dict() for event in journal.iter_all()] == expected


def test_a_reordered_or_truncated_export_is_refused_naming_each_line(
    invoke: Invoke, sqlite_url: str, tmp_path: Path
) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    Journal.open(source, create=True).close()
    lines = [orjson.dumps(record) for record in _fill(source)]
    dump = tmp_path / "dump.jsonl"
    reordered = [lines[1], lines[0], *lines[2:5], lines[6], lines[5], *lines[7:]]  # run-1 v1/v2 and v2/v3 of run-2
    dump.write_bytes(b"\n".join(reordered) + b"\n")
    result = invoke(sqlite_url, "import", str(dump))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 2 problems, nothing imported:\n")
    assert f"{dump}:2: stream 'run-1' version 1 comes after its version 2 ({dump}:1)" in result.stderr
    assert f"{dump}:6: stream 'run-2' jumps from version 1 ({dump}:5) to version 3: version 2 is missing, or out" in (
        result.stderr
    )
    dump.write_bytes(b"\n".join(lines)[:-20])  # cut in the middle of the last line
    result = invoke(sqlite_url, "import", str(dump))
    assert result.exit_code == 1
    assert f"{dump}:13: not a JSON line" in result.stderr
    assert "the file ends in the middle of it (truncated?); nothing imported" in result.stderr
    assert "Traceback" not in result.output
    with Journal.open(sqlite_url) as journal:
        assert journal.head_position() == 0


def _big_export(path: Path, events: int, streams: int) -> None:
    """`events` events of `streams` interleaved streams, as an export file (one event per batch)."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from agentjournal.journal.envelope import GENESIS_HASH, RecordedEvent, canonical_json

    heads: dict[str, tuple[int, str]] = {}
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("wb") as out:
        for number in range(events):
            stream = f"run-{number % streams}"
            version, prev_hash = heads.get(stream, (0, GENESIS_HASH))
            event = RecordedEvent(
                event_id=str(uuid.uuid4()),
                stream_id=stream,
                version=version + 1,
                position=number + 1,
                type="Step",
                schema_version=1,
                recorded_at=start + timedelta(milliseconds=number),
                actor="agent",
                tenant_id=None,
                correlation_id=None,
                causation_id=None,
                traceparent=None,
                data_json=canonical_json({"n": number, "text": "x" * 100}),
                metadata_json=b"{}",
                prev_hash=prev_hash,
                hash="",
            )
            event.hash = event.compute_hash()
            heads[stream] = (version + 1, event.hash)
            out.write(orjson.dumps(event.to_dict()) + b"\n")


def test_an_import_killed_with_sigkill_is_finished_by_running_it_again(
    invoke: Invoke, sql_journal_url: str, tmp_path: Path
) -> None:
    total = 20_000 if sql_journal_url.startswith("sqlite") else 4_000
    dump = tmp_path / "big.jsonl"
    _big_export(dump, total, streams=40)
    command = Path(sys.executable).parent / "agentjournal"
    process = subprocess.Popen(
        [str(command), "--db", sql_journal_url, "import", str(dump)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        with Journal.open(sql_journal_url) as watcher:
            deadline = time.monotonic() + 60
            while watcher.head_position() < total // 10 and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        assert process.poll() is None, "the import finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=20) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    with Journal.open(sql_journal_url) as journal:
        stored = journal.head_position()
        assert 0 < stored < total
        assert journal.verify().ok  # whole batches only: every chain intact

    finished = invoke(sql_journal_url, "import", str(dump))
    assert finished.exit_code == 0, finished.output
    assert finished.stdout.startswith(f"imported {total - stored} event(s) into ")
    assert f"the other {stored} were already stored" in finished.stdout
    again = invoke(sql_journal_url, "import", str(dump))
    assert again.stdout.startswith(f"already imported: {total} event(s), nothing changed")
    exported = invoke(sql_journal_url, "export")
    assert exported.stdout.encode().splitlines() == dump.read_bytes().splitlines()
    assert invoke(sql_journal_url, "verify").exit_code == 0


# ----- a damaged database, and what export leaves behind --------------------------------------------


def test_verify_on_a_damaged_sqlite_file_says_what_it_read_and_where_it_failed(
    invoke: Invoke, sqlite_url: str, tmp_path: Path
) -> None:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    with Journal.open(sqlite_url) as journal:
        for run in range(40):
            journal.append(f"run-{run}", [NewEvent("Step", {"n": n, "text": "y" * 200}) for n in range(25)])
    with path.open("r+b") as file:  # a page of events, in the middle of the file
        file.seek(150 * 4096)
        file.write(b"\xde\xad\xbe\xef" * 1024)
    result = invoke(sqlite_url, "verify")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: the SQLite file '{path}' is damaged: database disk image is malformed; ")
    assert "event(s) read and intact, up to position" in result.stderr
    assert "Traceback" not in result.output
    out = tmp_path / "out.jsonl"
    exported = invoke(sqlite_url, "export", "-o", str(out))
    assert exported.exit_code == 1
    assert "is damaged" in exported.stderr
    assert not out.exists()  # no half an export under the name asked for
    assert [entry.name for entry in tmp_path.iterdir() if "out" in entry.name] == []


def test_export_onto_a_folder_is_one_clear_error(invoke: Invoke, sqlite_url: str, tmp_path: Path) -> None:
    _fill(sqlite_url)
    result = invoke(sqlite_url, "export", "-o", str(tmp_path))
    assert result.exit_code in (1, 2)
    assert "Traceback" not in result.output
    assert "folder" in result.stderr or "directory" in result.stderr
