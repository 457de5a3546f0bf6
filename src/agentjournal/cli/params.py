"""Option values checked before a command runs: a wrong one is Typer's own usage error (exit code 2),
which names the option; checks that need the journal (an unknown stream, run or approval) are the
library's errors, reported by the app as one line with exit code 1.

These are Typer callbacks, written once: `typer.Option(callback=duration)`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import typer


def one_of(*choices: str) -> Callable[[str | None], str | None]:
    """A callback that refuses any value but `choices`, naming them."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of: {', '.join(choices)}")
        return value

    return check


def duration(value: str | None) -> str | None:
    """A callback for a duration: 90s, 15m, 6h, 7d, 2w."""
    from agentjournal.projections.base import ProjectionError
    from agentjournal.projections.metrics import parse_duration

    if value is not None:
        try:
            parse_duration(value)
        except ProjectionError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


def moment(value: str | None) -> str | None:
    """A callback for a time: ISO 8601 (UTC when no zone is given) or a duration ago (7d)."""
    if value is not None and _parse_time(value) is None:
        raise typer.BadParameter(_not_a_time(value))
    return value


def _not_a_time(value: str) -> str:
    return f"{value!r} is neither an ISO 8601 time (2026-11-01, 2026-11-01T09:30Z) nor a duration ago (90m, 24h, 7d)"


def _parse_time(value: str) -> datetime | None:
    from agentjournal.projections.base import ProjectionError
    from agentjournal.projections.metrics import parse_duration

    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            return datetime.now(UTC) - parse_duration(value)
        except ProjectionError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 date or time (UTC when no zone is given), or a duration ago: 90m, 24h, 7d, 2w."""
    from agentjournal.journal import InvalidEventError

    if value is None:
        return None
    parsed = _parse_time(value)
    if parsed is None:
        raise InvalidEventError(f"{option} {_not_a_time(value)}")
    return parsed
