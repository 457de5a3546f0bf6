"""Timelines: explained events in order, rendered as Markdown and HTML (escaped)."""

from __future__ import annotations

import pytest

from agentjournal.forensics import Explainers, Explanation, render_html, render_markdown, timeline
from agentjournal.journal import Journal, NewEvent, StreamNotFoundError
from agentjournal.model import VersionOutOfRangeError

from .agentdata import agent_run


def test_timeline_of_a_run(journal: Journal) -> None:
    run = agent_run(journal, "t1", steps=30)
    registry = Explainers()
    registry.register("ToolProposed", lambda e: Explanation(f"Decided to call {e.data['tool']}", e.data["reason"], {}))
    entries = timeline(journal, run.stream_id, explain=registry)
    assert [entry.version for entry in entries] == list(range(1, len(run.events) + 1))
    assert entries[1].explanation.title == "Decided to call search"
    assert entries[0].explanation.title == "Run started"
    window = timeline(journal, run.stream_id, from_version=10, to_version=12, explain=registry)
    assert [entry.version for entry in window] == [10, 11, 12]


def test_rendering_escapes_what_agents_wrote(journal: Journal) -> None:
    journal.append("run-x", NewEvent("UserMessage", {"text": "<script>alert(1)</script> | pipes"}, actor="user:<b>"))
    entries = timeline(journal, "run-x", explain=Explainers())
    page = render_html(entries, title="Run <x>", standalone=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.startswith("<!DOCTYPE html>") and "Run &lt;x&gt;" in page and "user:&lt;b&gt;" in page
    fragment = render_html(entries)
    assert fragment.startswith('<table class="aj-timeline">')
    markdown = render_markdown(entries, title="Run x")
    assert markdown.startswith("# Run x\n")
    assert "\\| pipes" in markdown and markdown.count("\n") == 5


def test_timeline_bad_input(journal: Journal) -> None:
    agent_run(journal, "t2", steps=2)
    with pytest.raises(StreamNotFoundError):
        timeline(journal, "run-missing")
    with pytest.raises(VersionOutOfRangeError, match="no version 99"):
        timeline(journal, "run-t2", to_version=99)
