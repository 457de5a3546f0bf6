"""Audit export: every action for one user, tenant or actor between two dates, in order, with
its justification (the explanation), its causation link, and the hash-chain status of every
stream involved. JSON Lines and CSV for tools; a standalone HTML page for people.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from agentjournal.forensics.explainers import Explainers, explainers
from agentjournal.forensics.timeline import TimelineEntry, explain_all, page, render_html
from agentjournal.journal import InvalidEventError, Journal, RecordedEvent

Format = Literal["jsonl", "csv", "html"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "html")

CSV_COLUMNS = (
    "position",
    "recorded_at",
    "stream_id",
    "version",
    "actor",
    "tenant_id",
    "type",
    "title",
    "summary",
    "tags",
    "event_id",
    "correlation_id",
    "causation_id",
    "caused_by",
    "stream_verified",
    "hash",
    "data",
)


@dataclass(frozen=True)
class StreamStatus:
    """The hash-chain verification of one stream of the report."""

    stream_id: str
    ok: bool
    events_checked: int
    problem: str | None = None


@dataclass
class AuditReport:
    filters: dict[str, str]
    since: datetime | None
    until: datetime | None
    entries: list[TimelineEntry]
    streams: list[StreamStatus]
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def verified(self) -> bool:
        """True when every stream involved verifies."""
        return all(status.ok for status in self.streams)

    def records(self) -> Iterator[dict[str, Any]]:
        """One plain dict per action, the shape of a JSON Lines row."""
        status = {s.stream_id: s.ok for s in self.streams}
        titles = {entry.event.event_id: entry.explanation.title for entry in self.entries}
        for entry in self.entries:
            event, explanation = entry.event, entry.explanation
            yield {
                "position": event.position,
                "recorded_at": event.recorded_at.isoformat(),
                "stream_id": event.stream_id,
                "version": event.version,
                "actor": event.actor,
                "tenant_id": event.tenant_id,
                "type": event.type,
                "title": explanation.title,
                "summary": explanation.summary,
                "tags": explanation.tags,
                "event_id": event.event_id,
                "correlation_id": event.correlation_id,
                "causation_id": event.causation_id,
                "caused_by": titles.get(event.causation_id or ""),
                "stream_verified": status.get(event.stream_id, False),
                "hash": event.hash,
                "data": event.data,
            }

    def to_jsonl(self) -> str:
        return "".join(orjson.dumps(record).decode() + "\n" for record in self.records())

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in self.records():
            record["tags"] = "; ".join(f"{key}={value}" for key, value in record["tags"].items())
            record["data"] = orjson.dumps(record["data"]).decode()
            writer.writerow(record)
        return out.getvalue()

    def to_html(self) -> str:
        e = html.escape
        who = ", ".join(f"{key} = {value}" for key, value in self.filters.items())
        start = self.since.isoformat() if self.since else "the beginning"
        span = f"{start} to {self.until.isoformat() if self.until else 'now'}"
        verdict = "every stream verifies" if self.verified else "SOME STREAMS FAIL VERIFICATION"
        streams = "".join(
            f"<tr><td>{e(s.stream_id)}</td><td>{'ok' if s.ok else 'BROKEN'}</td><td>{s.events_checked}</td>"
            f"<td>{e(s.problem or '')}</td></tr>"
            for s in self.streams
        )
        body = (
            f"<h1>Audit: {e(who)}</h1>\n"
            f"<p>{len(self.entries)} actions from {e(span)}, in journal order. "
            f"Generated {e(self.generated_at.isoformat())}. Hash chains: <strong>{e(verdict)}</strong>.</p>\n"
            '<h2>Streams</h2>\n<table class="aj-timeline"><thead><tr><th>stream</th><th>hash chain</th>'
            f"<th>events checked</th><th>problem</th></tr></thead><tbody>{streams}</tbody></table>\n"
            "<h2>Actions</h2>\n" + render_html(self.entries)
        )
        return page(f"Audit: {who}", body)

    def render(self, format: Format) -> str:
        if format not in FORMATS:
            raise InvalidEventError(f"unknown audit format {format!r}; choose one of {', '.join(FORMATS)}")
        return {"jsonl": self.to_jsonl, "csv": self.to_csv, "html": self.to_html}[format]()

    def write(self, path: str | Path, format: Format) -> Path:
        target = Path(path)
        target.write_text(self.render(format), encoding="utf-8")
        return target


def audit(
    journal: Journal,
    *,
    correlation_id: str | None = None,
    tenant_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    explain: Explainers = explainers,
) -> AuditReport:
    """Every event matching the filters in [since, until), explained, with each stream's verification.

    Correlation and tenant filters run in the database; `actor` is matched on the events read,
    so an actor-only audit reads the whole range: narrow it with since/until.
    """
    filters = {
        name: value
        for name, value in (("correlation_id", correlation_id), ("tenant_id", tenant_id), ("actor", actor))
        if value is not None
    }
    if not filters:
        raise InvalidEventError("audit needs whose actions to report: give correlation_id, tenant_id or actor")
    events: list[RecordedEvent] = [
        event
        for event in journal.iter_all(
            correlation_id=correlation_id, tenant_id=tenant_id, since=since, until=until, batch_size=5000
        )
        if actor is None or event.actor == actor
    ]
    streams = []
    for stream_id in dict.fromkeys(event.stream_id for event in events):
        report = journal.verify(stream_id)
        problem = str(report.first_broken) if report.first_broken else None
        streams.append(StreamStatus(stream_id, report.ok, report.events_checked, problem))
    return AuditReport(filters, since, until, explain_all(events, explain), streams)
