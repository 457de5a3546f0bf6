"""Audit export: one user's actions between two dates, in order, justified, with verification."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from agentjournal.forensics import Explainers, Explanation, audit
from agentjournal.journal import InvalidEventError, Journal, NewEvent

from .agentdata import agent_run, causation_chain


def _explainers() -> Explainers:
    registry = Explainers()
    registry.register(
        "ToolProposed", lambda e: Explanation(f"Decided to call {e.data['tool']}", f"args {e.data['args']}", {})
    )
    return registry


def test_audit_by_correlation_id_is_the_whole_request_in_order(journal: Journal) -> None:
    agent_run(journal, "noise", steps=10)
    chain = causation_chain(journal)
    report = audit(journal, correlation_id=chain.message.correlation_id, explain=_explainers())
    assert [entry.event.event_id for entry in report.entries] == [
        chain.message.event_id,
        chain.started.event_id,
        chain.proposed.event_id,
        chain.executed.event_id,
        chain.refund.event_id,
        chain.sibling.event_id,
        chain.settled.event_id,
    ]
    assert [status.stream_id for status in report.streams] == ["session-u42", "run-r42", "payments-acme"]
    assert report.verified
    records = [orjson.loads(line) for line in report.to_jsonl().splitlines()]
    assert records[2]["title"] == "Decided to call issue_refund"
    assert records[3]["caused_by"] == "Decided to call issue_refund"
    assert records[3]["causation_id"] == chain.proposed.event_id
    assert all(record["stream_verified"] for record in records)
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert [row["event_id"] for row in rows] == [record["event_id"] for record in records]
    assert orjson.loads(rows[4]["data"]) == {"order": 1234, "usd": 19.99}


def test_audit_by_actor_and_by_tenant_within_dates(journal: Journal) -> None:
    start = datetime.now(UTC)
    chain = causation_chain(journal)
    middle = datetime.now(UTC)
    journal.append("payments-acme", NewEvent("RefundIssued", {"order": 9}, actor="service:payments", tenant_id="acme"))
    journal.append("payments-other", NewEvent("RefundIssued", {"order": 7}, actor="service:payments", tenant_id="zeta"))
    by_actor = audit(journal, actor="service:payments", since=start, until=middle)
    assert [entry.event.event_id for entry in by_actor.entries] == [
        chain.refund.event_id,
        chain.sibling.event_id,
        chain.settled.event_id,
    ]
    by_tenant = audit(journal, tenant_id="acme", since=middle)
    assert [entry.event.data for entry in by_tenant.entries] == [{"order": 9}]
    assert len(audit(journal, tenant_id="acme").entries) == 8
    assert audit(journal, tenant_id="acme", until=start - timedelta(days=1)).entries == []


def test_audit_html_is_a_standalone_escaped_report(journal: Journal, tmp_path: Path) -> None:
    journal.append("session-x", NewEvent("UserMessage", {"text": "<img src=x onerror=alert(1)>"}, actor="user:x"))
    report = audit(journal, actor="user:x")
    path = report.write(tmp_path / "report.html", "html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "Audit: actor = user:x" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "every stream verifies" in page
    with pytest.raises(InvalidEventError, match="unknown audit format 'pdf'"):
        report.render("pdf")  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError, match="give correlation_id, tenant_id or actor"):
        audit(journal)


def test_audit_reports_a_tampered_stream(sqlite_url: str) -> None:
    journal = Journal.open(sqlite_url)
    chain = causation_chain(journal)
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:  # someone edits a row behind the journal's back
        raw.execute("DROP TRIGGER aj_events_no_update")
        raw.execute(
            "UPDATE aj_events SET data = ? WHERE event_id = ?", ('{"order":1234,"usd":1999.0}', chain.refund.event_id)
        )
    report = audit(journal, tenant_id="acme")
    status = {s.stream_id: s for s in report.streams}
    assert not report.verified
    assert not status["payments-acme"].ok and "changed" in (status["payments-acme"].problem or "")
    assert status["run-r42"].ok
    assert "SOME STREAMS FAIL VERIFICATION" in report.to_html() and "BROKEN" in report.to_html()
    records = [orjson.loads(line) for line in report.to_jsonl().splitlines()]
    verified = {record["stream_id"]: record["stream_verified"] for record in records}
    assert verified == {"session-u42": True, "run-r42": True, "payments-acme": False}
    journal.close()


def test_audit_html_links_each_action_to_its_cause(journal: Journal) -> None:
    chain = causation_chain(journal)
    page = audit(journal, correlation_id=chain.message.correlation_id).to_html()
    assert f'<tr id="e-{chain.refund.event_id}">' in page
    assert f'<a href="#e-{chain.executed.event_id}">run-r42 v3: ' in page  # the refund was caused by the tool call
