"""The forensics commands, run in process against a real journal: each Tuesday workflow from the shell."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from agentjournal.cli import main  # noqa: F401  (registers every command module)
from agentjournal.cli.app import app
from agentjournal.forensics import default_explanation, explainers
from agentjournal.journal import Journal, NewEvent

from .agentdata import Chain3, Ledger, PricesInBounds, Run, agent_run, causation_chain

Invoke = Callable[..., Result]
LEDGER = f"{Ledger.__module__}:Ledger"
RULE = f"{PricesInBounds.__module__}:PricesInBounds"
COMMANDS = ("state", "explain", "bisect", "regrade", "lineage", "whatif", "audit", "invariants")


@pytest.fixture
def data(sqlite_or_postgres_url: str) -> tuple[str, Run, Chain3]:
    journal = Journal.open(sqlite_or_postgres_url)
    try:
        run = agent_run(journal, "r1")
        chain = causation_chain(journal)
    finally:
        journal.close()
    return sqlite_or_postgres_url, run, chain


def _plain(result: Result) -> str:
    return re.sub(r"\s+", " ", result.output)


def test_state_at_a_version_and_the_events_around_it(invoke: Invoke, data: tuple[str, Run, Chain3]) -> None:
    url, run, _ = data
    result = invoke(url, "state", run.stream_id, "--at", "17", "--aggregate", LEDGER)
    assert result.exit_code == 0, result.output
    assert "run-r1 at version 17 (Ledger)" in result.output
    assert "this event:" in result.output and "the event before:" in result.output
    as_json = invoke(url, "state", run.stream_id, "--at", "17", "--aggregate", LEDGER, "--json")
    state = orjson.loads(as_json.output)
    assert state["version"] == 17 and state["state"]["tool_calls"] == 5
    summary = invoke(url, "state", "payments-acme")  # no aggregate registered: the stream summary
    assert summary.exit_code == 0 and "StreamSummary" in summary.output and "RefundSettled" in summary.output


def test_state_at_time(invoke: Invoke, data: tuple[str, Run, Chain3]) -> None:
    url, _, _ = data
    result = invoke(url, "state", "payments-acme", "--at-time", "2999-01-01")
    assert result.exit_code == 0 and "payments-acme at version 2" in result.output
    early = invoke(url, "state", "payments-acme", "--at-time", "2001-01-01T00:00:00Z")
    assert early.exit_code == 1 and "first event is at" in early.output
    bad = invoke(url, "state", "payments-acme", "--at-time", "yesterday")
    assert bad.exit_code == 2 and "is neither an ISO 8601 time" in bad.output  # a usage error
    ago = invoke(url, "state", "payments-acme", "--at-time", "0s")
    assert ago.exit_code == 0 and "payments-acme at version 2" in ago.output


def test_state_bad_input_is_a_clear_message(invoke: Invoke, data: tuple[str, Run, Chain3]) -> None:
    url, run, _ = data
    missing = invoke(url, "state", "run-nope")
    assert missing.exit_code == 1 and "no stream 'run-nope'" in missing.output
    out_of_range = invoke(url, "state", run.stream_id, "--at", "9999", "--aggregate", LEDGER)
    assert out_of_range.exit_code == 1 and "no version 9999" in out_of_range.output
    malformed = invoke(url, "state", run.stream_id, "--aggregate", "not-a-path")
    assert malformed.exit_code == 1 and "not of the form package.module:attr" in malformed.output
    assert "Traceback" not in missing.output + out_of_range.output + malformed.output


def test_explain_as_table_markdown_and_html(invoke: Invoke, data: tuple[str, Run, Chain3], tmp_path: Path) -> None:
    url, run, _ = data
    table = invoke(url, "explain", run.stream_id, "--from", "1", "--to", "4")
    assert table.exit_code == 0, table.output
    assert "what happened" in table.output and table.output.count("\n") < 30
    markdown = invoke(url, "explain", "payments-acme", "--format", "markdown")
    assert markdown.output.startswith("# payments-acme") and "| payments-acme | 2 |" in markdown.output
    page = tmp_path / "run.html"
    html = invoke(url, "explain", run.stream_id, "--format", "html", "-o", str(page))
    assert html.exit_code == 0 and page.read_text().startswith("<!DOCTYPE html>")
    wrong = invoke(url, "explain", run.stream_id, "--format", "pdf")
    assert wrong.exit_code == 2 and "'pdf' is not one of: table, markdown, html" in wrong.output


def test_bisect_over_a_stream_and_over_the_journal(invoke: Invoke, data: tuple[str, Run, Chain3]) -> None:
    url, run, _ = data
    result = invoke(url, "bisect", "--invariant", RULE, "--stream", run.stream_id)
    assert result.exit_code == 0, result.output
    text = _plain(result)
    assert f"prices-in-bounds fails from version {run.planted_version}" in text
    assert f"last version that held: {(run.planted_version or 0) - 1}" in text
    assert "price -42.0 is out of bounds" in text
    journal_wide = invoke(url, "bisect", "-i", RULE, "--since", "2000-01-01", "--until", "2999-01-01")
    position = run.events[(run.planted_version or 1) - 1].position
    assert journal_wide.exit_code == 0 and f"fails from position {position}" in _plain(journal_wide)
    exhaustive = invoke(url, "bisect", "-i", RULE, "--stream", run.stream_id, "--exhaustive")
    assert "every transition" in exhaustive.output


def test_bisect_bad_input(invoke: Invoke, data: tuple[str, Run, Chain3]) -> None:
    url, run, _ = data
    unknown = invoke(url, "bisect", "--invariant", "nope", "--stream", run.stream_id)
    assert unknown.exit_code == 1 and "no invariant named 'nope'" in unknown.output
    malformed = invoke(url, "bisect", "--invariant", "agentjournal.nothing:Rule", "--stream", run.stream_id)
    assert malformed.exit_code == 1 and "cannot import module" in malformed.output
    both = invoke(url, "bisect", "-i", RULE, "--stream", run.stream_id, "--since", "2020-01-01")
    assert both.exit_code == 2 and "not both" in both.output
    missing = invoke(url, "bisect", "-i", RULE, "--stream", "run-nope")
    assert missing.exit_code == 1 and "no stream 'run-nope'" in missing.output


def test_regrade(invoke: Invoke, data: tuple[str, Run, Chain3]) -> None:
    url, run, _ = data
    journal = Journal.open(url)
    agent_run(journal, "clean", steps=20, plant_at_step=None)
    journal.close()
    result = invoke(url, "regrade", "--invariant", RULE, "--since", "1h", "--aggregate", LEDGER)
    assert result.exit_code == 0, result.output
    text = _plain(result)
    assert re.search(rf"run-r1 +v{run.planted_version} ", text)
    assert "3 run(s) graded: 2 pass, 1 fail" in text  # run-r1, run-clean, and run-r42 of the causation chain


def test_lineage_chain_and_effects_tree(invoke: Invoke, data: tuple[str, Run, Chain3]) -> None:
    url, _, chain = data
    back = invoke(url, "lineage", chain.settled.event_id)
    assert back.exit_code == 0, back.output
    out = back.output
    assert out.index("payments-acme v2") < out.index("run-r42 v3") < out.index("session-u42 v1")
    assert back.output.count("caused by") == 5
    forward = invoke(url, "lineage", chain.message.event_id, "--effects")
    assert forward.exit_code == 0 and "effects of" in forward.output
    assert all(
        f"{where} " in forward.output for where in ("run-r42 v1", "run-r42 v4", "payments-acme v1", "payments-acme v2")
    )
    missing = invoke(url, "lineage", "0193aaaa-0000-7000-8000-00000000dead")
    assert missing.exit_code == 1 and "no event with id" in missing.output


def test_whatif(invoke: Invoke, data: tuple[str, Run, Chain3]) -> None:
    url, run, _ = data
    result = invoke(url, "whatif", run.stream_id, "--drop", str(run.planted_version), "--invariant", RULE)
    assert result.exit_code == 0, result.output
    text = _plain(result)
    assert f"dropped version {run.planted_version} (ToolExecuted)" in text
    assert re.search(r"prices-in-bounds +fails: price -42.0 is out of bounds +holds", text)
    injected = invoke(
        url,
        "whatif",
        run.stream_id,
        "--inject",
        '3=ToolExecuted:{"tool": "price_lookup", "result": {"price": 1}}',
        "--aggregate",
        LEDGER,
        "--upto",
        "10",
    )
    assert injected.exit_code == 0 and "injected ToolExecuted after version 3" in injected.output
    bad = invoke(url, "whatif", run.stream_id, "--replace", "x=Thing", "--aggregate", LEDGER)
    assert bad.exit_code == 2 and "expected VERSION=TYPE" in bad.output
    not_json = invoke(url, "whatif", run.stream_id, "--replace", "2=Thing:{nope", "--aggregate", LEDGER)
    assert not_json.exit_code == 2 and "not JSON" in not_json.output


def test_audit_to_html_and_jsonl(invoke: Invoke, data: tuple[str, Run, Chain3], tmp_path: Path) -> None:
    url, _, chain = data
    report = tmp_path / "report.html"
    result = invoke(
        url, "audit", "--correlation-id", chain.message.correlation_id or "", "--format", "html", "-o", str(report)
    )
    assert result.exit_code == 0, result.output
    assert "wrote 7 actions from 3 stream(s)" in _plain(result) and "every hash chain verifies" in _plain(result)
    assert "Refund issued" in report.read_text()
    lines = invoke(url, "audit", "--actor", "user:u42", "--since", "2000-01-01").output.splitlines()
    assert [orjson.loads(line)["type"] for line in lines] == ["UserMessage"]
    csv_text = invoke(url, "audit", "--tenant", "acme", "--format", "csv").output
    assert csv_text.startswith("position,recorded_at,stream_id") and csv_text.count("\n") == 8
    nobody = invoke(url, "audit", "--format", "html")
    assert nobody.exit_code == 1 and "give correlation_id, tenant_id or actor" in nobody.output


def test_every_forensics_command_has_help_ending_with_an_example(invoke: Invoke) -> None:
    for command in COMMANDS:
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Example: agentjournal " in result.output, command


def test_invariants_lists_registered_rules(invoke: Invoke, sqlite_url: str) -> None:
    from agentjournal.forensics import invariants

    invariants.register(PricesInBounds())
    result = invoke(sqlite_url, "invariants")
    assert result.exit_code == 0 and "prices-in-bounds" in result.output


def test_load_and_paths_import_modules_from_the_current_directory(
    invoke: Invoke, data: tuple[str, Run, Chain3], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, run, _ = data
    module = f"aj_rules_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "from agentjournal.forensics import Explanation, explainers\n"
        "explainers.register('RefundSettled', lambda e: Explanation('Money is back', str(e.data['order']), {}))\n"
        f"from {Ledger.__module__} import PricesInBounds\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [path for path in sys.path if path not in ("", str(tmp_path))])
    try:
        explained = invoke(url, "explain", "payments-acme", "--load", module)
        assert explained.exit_code == 0 and "Money is back" in explained.output
        found = invoke(url, "bisect", "-i", f"{module}:PricesInBounds", "--stream", run.stream_id)
        assert found.exit_code == 0 and "prices-in-bounds fails from version" in _plain(found)
        missing = invoke(url, "explain", "payments-acme", "--load", "aj_no_such_module")
        assert missing.exit_code == 1 and "--load aj_no_such_module: cannot import it" in missing.output
    finally:
        explainers.register("RefundSettled", default_explanation)


def test_data_that_looks_like_rich_markup_is_printed_as_it_is(invoke: Invoke, sqlite_url: str) -> None:
    journal = Journal.open(sqlite_url)
    first = journal.append("run-[x]", NewEvent("UserMessage", {"text": "[/bold] [red]not red[/red]"})).events[0]
    with journal.context(caused_by=first):
        journal.append("run-[x]", NewEvent("Tool[Failed]", {"error": "[/]"}))
    journal.close()
    explained = invoke(sqlite_url, "explain", "run-[x]")
    assert explained.exit_code == 0, explained.output
    assert "[/bold] [red]not red[/red]" in explained.output and "error: [/]" in explained.output
    tree = invoke(sqlite_url, "lineage", first.event_id, "--effects")
    assert tree.exit_code == 0 and "run-[x] v2" in tree.output and "[/]" in tree.output
