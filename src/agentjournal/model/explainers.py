"""Explainers: an event rendered as a title, a summary and tags, in plain language.

One explainer per event type; an unknown type (or an explainer that fails) still gets a
useful default built from the type name and the data, so an audit never stops on one event.
A registry is an object: the forensics layer builds the default one (`forensics.explainers`)
with the run contract's explainers in it; an application may build its own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentjournal.journal import RecordedEvent

Explain = Callable[[RecordedEvent], "Explanation"]

SUMMARY_FIELDS = 4
"""How many data fields the default summary shows."""
VALUE_CHARS = 60
"""How long one value may be in the default summary before it is cut."""


@dataclass(frozen=True)
class Explanation:
    title: str
    summary: str
    tags: dict[str, str] = field(default_factory=dict)


class Explainers:
    """A registry of explainers by event type; `explainers` is the default instance."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_type: dict[str, Explain] = {}

    def register(self, event_type: str, explain: Explain) -> None:
        """Explain events of `event_type` with `explain` (replacing any earlier one)."""
        if not isinstance(event_type, str) or not event_type:
            raise ValueError(f"event type must be a non-empty string, got {event_type!r}")
        with self._lock:
            self._by_type[event_type] = explain

    def explainer(self, event_type: str) -> Callable[[Explain], Explain]:
        """Decorator form of `register`."""

        def decorate(explain: Explain) -> Explain:
            self.register(event_type, explain)
            return explain

        return decorate

    def registered(self) -> list[str]:
        with self._lock:
            return sorted(self._by_type)

    def explain(self, event: RecordedEvent) -> Explanation:
        """The event in plain language; never raises for an unknown type or a failing explainer."""
        explain = self._by_type.get(event.type)
        if explain is None:
            return default_explanation(event)
        try:
            explanation = explain(event)
            if not isinstance(explanation, Explanation):
                raise TypeError(f"returned {type(explanation).__name__}, not an Explanation")
        except Exception as exc:
            fallback = default_explanation(event)
            return Explanation(
                fallback.title,
                fallback.summary,
                {**fallback.tags, "explainer_error": f"{type(exc).__name__}: {exc}"},
            )
        return explanation


def humanize(event_type: str) -> str:
    """`ToolExecuted` / `tool_executed` / `tool.executed` -> `Tool executed`."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|[._\-\s]+", " ", event_type).split()
    if not words:
        return event_type
    text = " ".join(word if word.isupper() and len(word) > 1 else word.lower() for word in words)
    return text[0].upper() + text[1:]


def brief(value: Any, limit: int = VALUE_CHARS) -> str:
    """A value on one short line."""
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {brief(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, list):
        text = "[" + ", ".join(brief(v, limit) for v in value) + "]"
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def default_explanation(event: RecordedEvent) -> Explanation:
    """Title from the type name; summary from the first few data fields; tags from the envelope."""
    data = event.data
    shown = [f"{key}: {brief(value)}" for key, value in list(data.items())[:SUMMARY_FIELDS]]
    if len(data) > SUMMARY_FIELDS:
        shown.append(f"(+{len(data) - SUMMARY_FIELDS} more)")
    tags = {"type": event.type}
    if event.actor:
        tags["actor"] = event.actor
    return Explanation(humanize(event.type), "; ".join(shown) if shown else "no data", tags)
