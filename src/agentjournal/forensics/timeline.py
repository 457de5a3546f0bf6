"""A stream (or any list of events) as a timeline of explanations, rendered as Markdown or HTML.

The HTML is a fragment by default (the dashboard embeds it) or a standalone page; every
value is escaped, because event data is whatever an agent or a user wrote.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from agentjournal.forensics.explainers import Explainers, Explanation, explainers
from agentjournal.journal import Journal, RecordedEvent
from agentjournal.model.repository import check_version, read_versions, require_stream


@dataclass(frozen=True)
class TimelineEntry:
    event: RecordedEvent
    explanation: Explanation

    @property
    def version(self) -> int:
        return self.event.version

    @property
    def recorded_at(self) -> datetime:
        return self.event.recorded_at

    @property
    def actor(self) -> str | None:
        return self.event.actor


def explain_all(events: Iterable[RecordedEvent], explain: Explainers = explainers) -> list[TimelineEntry]:
    return [TimelineEntry(event, explain.explain(event)) for event in events]


def timeline(
    journal: Journal,
    stream_id: str,
    *,
    from_version: int = 1,
    to_version: int | None = None,
    explain: Explainers = explainers,
) -> list[TimelineEntry]:
    """The stream's events from..to (inclusive) with their explanations, in order."""
    current = require_stream(journal, stream_id)
    end = current if to_version is None else to_version
    for version in (from_version, end):
        check_version(stream_id, version, current)
    return explain_all(read_versions(journal, stream_id, from_version, end), explain)


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _tags(explanation: Explanation) -> str:
    return ", ".join(f"{key}={value}" for key, value in explanation.tags.items())


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(entries: Sequence[TimelineEntry], *, title: str | None = None) -> str:
    """A Markdown table: version, time, actor, what happened, details, tags."""
    lines = [f"# {_md(title)}", ""] if title else []
    lines += [
        "| stream | version | time | actor | what | details | tags |",
        "| --- | ---: | --- | --- | --- | --- | --- |",
    ]
    for entry in entries:
        event, explanation = entry.event, entry.explanation
        cells = [
            event.stream_id,
            str(event.version),
            _time(event.recorded_at),
            event.actor or "",
            explanation.title,
            explanation.summary,
            _tags(explanation),
        ]
        lines.append("| " + " | ".join(_md(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1f24; }
table.aj-timeline { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
.aj-timeline th, .aj-timeline td { border-bottom: 1px solid #d0d7de; padding: 0.35rem 0.6rem; text-align: left;
  vertical-align: top; }
.aj-timeline th { background: #f6f8fa; }
.aj-timeline .tag { display: inline-block; background: #eef1f4; border-radius: 4px; padding: 0 0.3rem;
  margin: 0 0.2rem 0.2rem 0; font-size: 0.8rem; }
.aj-timeline code { font-size: 0.8rem; }
"""


def render_html(entries: Sequence[TimelineEntry], *, title: str | None = None, standalone: bool = False) -> str:
    """An HTML table of the entries (a fragment, or a whole page with `standalone=True`)."""
    e = html.escape
    shown = {entry.event.event_id: entry for entry in entries}
    rows = []
    for entry in entries:
        event, explanation = entry.event, entry.explanation
        tags = "".join(f'<span class="tag">{e(key)}={e(value)}</span>' for key, value in explanation.tags.items())
        rows.append(
            f'<tr id="e-{e(event.event_id)}">'
            f"<td>{e(event.stream_id)}</td><td>{event.version}</td><td>{e(_time(event.recorded_at))}</td>"
            f"<td>{e(event.actor or '')}</td>"
            f"<td><strong>{e(explanation.title)}</strong><br>{e(explanation.summary)}</td>"
            f"<td>{_cause(event, shown)}</td><td>{tags}</td><td><code>{e(event.event_id)}</code></td>"
            "</tr>"
        )
    table = (
        '<table class="aj-timeline"><thead><tr><th>stream</th><th>version</th><th>time</th><th>actor</th>'
        "<th>what happened</th><th>caused by</th><th>tags</th><th>event id</th></tr></thead><tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>"
    )
    heading = f"<h1>{e(title)}</h1>\n" if title else ""
    if not standalone:
        return heading + table
    return page(title or "agentjournal timeline", heading + table)


def _cause(event: RecordedEvent, shown: dict[str, TimelineEntry]) -> str:
    """The causing event as a link to its row when it is shown, else its id."""
    if event.causation_id is None:
        return ""
    cause = shown.get(event.causation_id)
    if cause is None:
        return f"<code>{html.escape(event.causation_id)}</code>"
    label = f"{cause.event.stream_id} v{cause.event.version}: {cause.explanation.title}"
    return f'<a href="#e-{html.escape(cause.event.event_id)}">{html.escape(label)}</a>'


def page(title: str, body: str) -> str:
    """A standalone HTML document with the timeline styles."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
