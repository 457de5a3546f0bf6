"""Where an evaluation is written: a journal of its own next to the production journal.

Replays are runs of the run contract, so they must never land among the production runs
(their metrics, alerts and audits). Unless told otherwise (`--eval-db`, AGENTJOURNAL_EVAL_DB),
the evaluation journal sits beside the production one, on the same server:

- `sqlite:///runs.db` -> `sqlite:///runs.evals.db` (without `mode=ro`: an evaluation writes)
- `postgresql://…?schema=prod` -> `…?schema=prod_evals` (no schema: `evals`)
- `mysql://host/prod` -> `mysql://host/prod_evals`

An in-memory journal has no such place: name one.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from agentjournal.evals.replay import EvaluationError
from agentjournal.journal.location import redact

__all__ = ["ENV", "evaluation_url"]

ENV = "AGENTJOURNAL_EVAL_DB"


def evaluation_url(production_url: str) -> str:
    """The default evaluation journal of the journal at `production_url`."""
    parts = urlsplit(production_url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        head, rest = production_url.split("://", 1)
        path, _, query = rest.partition("?")
        folder, slash, name = path.rpartition("/")
        if not name or name == ":memory:":
            raise _nowhere(production_url)
        stem, dot, suffix = name.rpartition(".")
        renamed = f"{stem}.evals.{suffix}" if dot and stem else f"{name}.evals"
        kept = urlencode([(key, value) for key, value in parse_qsl(query, keep_blank_values=True) if key != "mode"])
        return f"{head}://{folder}{slash}{renamed}{'?' if kept else ''}{kept}"
    if scheme in ("postgresql", "postgres"):
        parameters = dict(parse_qsl(parts.query, keep_blank_values=True))
        schema = parameters.get("schema")
        parameters["schema"] = f"{schema}_evals" if schema else "evals"
        return parts._replace(query=urlencode(parameters)).geturl()
    if scheme in ("mysql", "mariadb"):
        database = parts.path.strip("/")
        if not database:
            raise EvaluationError(
                f"{redact(production_url)} names no database, so the evaluation journal has none to sit beside; "
                "pass --eval-db"
            )
        return parts._replace(path=f"/{database}_evals").geturl()
    raise _nowhere(production_url)


def _nowhere(url: str) -> EvaluationError:
    return EvaluationError(
        f"{redact(url)} has no place beside it for an evaluation journal; name one with --eval-db "
        f"(or {ENV}), e.g. sqlite:///evals.db"
    )
