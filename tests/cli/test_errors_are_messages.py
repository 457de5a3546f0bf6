"""Every CLI command, given a wrong argument, ends with a message and a non-zero exit, never a traceback.

The commands come from the app's own command tree, and every parameter of every command that takes a
value must have a wrong value below (or be listed as one that any value fits, saying why): a new
command or a new option cannot escape the test. Every command, flags and all, also gets an unknown option.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

import agentjournal
from agentjournal import AgentJournalError
from agentjournal.agents.memory import MemoryItemNotFound
from agentjournal.agents.models.base import ModelError
from agentjournal.agents.planner import PlanValidationError
from agentjournal.agents.policy import PolicyError
from agentjournal.agents.tools import ToolArgumentsError, TransientToolError, UnknownToolError
from agentjournal.journal import JournalError
from agentjournal.model import AggregateLoadError
from agentjournal.projections import ProjectionError

from .sample import INVARIANT, Invoke, Sample, command_tree

MISSING = "/nonexistent-folder/nothing-here"
"""A path in a folder that does not exist."""
UUID = "0193aaaa-0000-7000-8000-00000000dead"
"""A well-formed event id that no event has."""

# Parameters any value of which is a valid request (an answer can be empty), with the reason.
ANY_VALUE_FITS: dict[tuple[str, str], str] = {
    ("streams", "prefix"): "a prefix no stream has lists no stream",
    ("regrade", "prefix"): "a prefix no run has grades no run",
    ("policy replay", "prefix"): "a prefix no run has judges no call",
    ("audit", "correlation_id"): "an audit of a request that left nothing is empty",
    ("audit", "tenant"): "an audit of a tenant that did nothing is empty",
    ("audit", "actor"): "an audit of an actor that did nothing is empty",
    ("runs cancel", "reason"): "free text, recorded",
    ("runs cancel", "by"): "free text, recorded",
    ("worker", "node"): "any name; a node is what it calls itself",
    ("sagas retry", "by"): "free text, recorded",
    ("sagas retry", "reason"): "free text, recorded",
}


def wrong_arguments(s: Sample) -> list[tuple[str, str, tuple[str, ...]]]:
    """(command, parameter, arguments): each a wrong value of one parameter, the others right."""
    run, approval, policy, folder = s.run_stream, s.approval_id, str(s.policy), s.folder
    bad_policy = folder / "bad-policy.yaml"
    bad_policy.write_text("version: 1\nrules:\n  - name: a\n    action: block\n")
    bad_export = folder / "bad-export.jsonl"
    bad_export.write_text('{"event_id": "x"}\nnot json\n')
    return [
        ("demo", "db_file", ("--db-file", f"{MISSING}/demo.db")),
        ("demo", "db_file", ("--db-file", str(folder))),
        ("state", "stream", ("run-nope",)),
        ("state", "at", (run, "--at", "9999")),
        ("state", "at", (run, "--at", "x")),
        ("state", "at_time", (run, "--at-time", "yesterday")),
        ("state", "at_time", (run, "--at", "3", "--at-time", "1h")),
        ("state", "aggregate", (run, "--aggregate", "not-a-path")),
        ("state", "aggregate", (run, "--aggregate", "agentjournal.nothing:Thing")),
        ("state", "load", (run, "--load", "aj_no_such_module")),
        ("state", "as_json", (run, "--json", "--at", "0")),
        ("explain", "stream", ("run-nope",)),
        ("explain", "from_version", (run, "--from", "0")),
        ("explain", "from_version", (run, "--from", "9999")),
        ("explain", "to_version", (run, "--to", "9999")),
        ("explain", "to_version", (run, "--from", "5", "--to", "2")),
        ("explain", "format", (run, "--format", "pdf")),
        ("explain", "output_path", (run, "--format", "html", "-o", f"{MISSING}/run.html")),
        ("explain", "output_path", (run, "--format", "html", "-o", str(folder))),
        ("explain", "output_path", (run, "-o", str(folder / "table.txt"))),
        ("explain", "as_json", (run, "--json", "--format", "html")),
        ("explain", "load", (run, "--load", "aj_no_such_module")),
        ("bisect", "invariant", ("--stream", run)),
        ("bisect", "invariant", ("-i", "nope", "--stream", run)),
        ("bisect", "invariant", ("-i", "agentjournal.nothing:Rule", "--stream", run)),
        ("bisect", "stream", ("-i", INVARIANT, "--stream", "run-nope")),
        ("bisect", "stream", ("-i", INVARIANT, "--stream", run, "--since", "1d")),
        ("bisect", "since", ("-i", INVARIANT, "--since", "yesterday")),
        ("bisect", "until", ("-i", INVARIANT, "--until", "tomorrow")),
        ("bisect", "until", ("-i", INVARIANT, "--since", "2026-02-01", "--until", "2026-01-01")),
        ("bisect", "exhaustive", ("-i", INVARIANT, "--stream", "run-nope", "--exhaustive")),
        ("bisect", "aggregate", ("-i", INVARIANT, "--stream", run, "--aggregate", "nope")),
        ("bisect", "as_json", ("-i", "nope", "--stream", run, "--json")),
        ("bisect", "load", ("-i", INVARIANT, "--load", "aj_no_such_module")),
        ("regrade", "invariant", ("-i", "nope")),
        ("regrade", "since", ("-i", INVARIANT, "--since", "last week")),
        ("regrade", "until", ("-i", INVARIANT, "--until", "7x")),
        ("regrade", "until", ("-i", INVARIANT, "--since", "1d", "--until", "2d")),
        ("regrade", "aggregate", ("-i", INVARIANT, "--aggregate", "agentjournal:Nothing")),
        ("regrade", "as_json", ("-i", "nope", "--json")),
        ("regrade", "load", ("-i", INVARIANT, "--load", "aj_no_such_module")),
        ("lineage", "event_id", ("not-an-event-id",)),
        ("lineage", "event_id", (UUID,)),
        ("lineage", "show_effects", (UUID, "--effects")),
        ("lineage", "load", (s.event_id, "--load", "aj_no_such_module")),
        ("whatif", "stream", ("run-nope",)),
        ("whatif", "drop", (run, "--drop", "9999")),
        ("whatif", "drop", (run, "--drop", "x")),
        ("whatif", "replace", (run, "--replace", "x=Thing")),
        ("whatif", "replace", (run, "--replace", "9999=Thing")),
        ("whatif", "inject", (run, "--inject", "2=Thing:{nope")),
        ("whatif", "inject", (run, "--inject", "2=Thing:[1]")),
        ("whatif", "check", (run, "--invariant", "nope")),
        ("whatif", "upto", (run, "--upto", "9999")),
        ("whatif", "upto", (run, "--upto", "0")),
        ("whatif", "aggregate", (run, "--aggregate", "not-a-path")),
        ("whatif", "as_json", ("run-nope", "--json")),
        ("whatif", "load", (run, "--load", "aj_no_such_module")),
        ("audit", "correlation_id", ()),  # no selector at all
        ("audit", "since", ("--tenant", "acme", "--since", "yesterday")),
        ("audit", "until", ("--tenant", "acme", "--until", "7x")),
        ("audit", "until", ("--tenant", "acme", "--since", "2026-02-01", "--until", "2026-01-01")),
        ("audit", "format", ("--tenant", "acme", "--format", "pdf")),
        ("audit", "output_path", ("--tenant", "acme", "-o", f"{MISSING}/audit.jsonl")),
        ("audit", "output_path", ("--tenant", "acme", "-o", str(folder))),
        ("audit", "load", ("--tenant", "acme", "--load", "aj_no_such_module")),
        ("invariants", "load", ("--load", "aj_no_such_module")),
        ("invariants", "as_json", ("--json", "--load", "aj_no_such_module")),
        ("migrate", "check", ("--check", "extra")),
        ("streams", "limit", ("--limit", "0")),
        ("streams", "as_json", ("--json", "--limit", "x")),
        ("events", "stream", ("run-nope",)),
        ("events", "from_version", (run, "--from", "0")),
        ("events", "from_version", (run, "--from", "9999")),
        ("events", "to_version", (run, "--to", "0")),
        ("events", "as_json", ("run-nope", "--json")),
        ("tail", "after", ("--after", "-1")),
        ("tail", "follow", ("--follow", "--interval", "0")),
        ("tail", "limit", ("--limit", "0")),
        ("tail", "interval", ("--interval", "0")),
        ("tail", "as_json", ("--json", "--limit", "0")),
        ("verify", "stream", ("--stream", "run-nope")),
        ("export", "output", ("-o", f"{MISSING}/export.jsonl")),
        ("export", "output", ("-o", str(folder))),
        ("import", "file", (f"{MISSING}/export.jsonl",)),
        ("import", "file", (str(folder),)),
        ("import", "file", (str(bad_export),)),
        ("search", "text", (" ",)),
        ("search", "limit", ("ORD-7000", "--limit", "0")),
        ("search", "as_json", (" ", "--json")),
        ("metrics", "by", ("--by", "colour")),
        ("metrics", "since", ("--since", "7x")),
        ("metrics", "plot", ("--plot", str(folder / "chart.jpg"))),
        ("metrics", "plot", ("--plot", f"{MISSING}/chart.png")),
        ("metrics", "metric", ("--plot", str(folder / "chart.svg"), "--metric", "karma")),
        ("metrics", "bucket", ("--plot", str(folder / "chart.svg"), "--bucket", "0d")),
        ("metrics", "bucket", ("--bucket", "daily")),
        ("metrics", "as_json", ("--json", "--by", "colour")),
        ("tool-usage", "since", ("--since", "7x")),
        ("tool-usage", "as_json", ("--json", "--since", "7x")),
        ("policy-decisions", "as_json", ("--json", "extra")),
        ("agent-metrics", "since", ("--since", "a week")),
        ("agent-metrics", "as_json", ("--json", "--since", "a week")),
        ("alerts", "check", ("--check", "--limit", "0")),
        ("alerts", "limit", ("--limit", "0")),
        ("alerts", "as_json", ("--json", "--limit", "-3")),
        ("worker", "ttl", ("--ttl", "0")),
        ("worker", "ttl", ("--ttl", "-1")),
        ("worker", "projection", ("--projection", "nope")),
        ("worker", "batch_size", ("--batch-size", "0")),
        ("worker", "alerts_every", ("--alerts-every", "-1")),
        ("leases", "as_json", ("--json", "extra")),
        ("approvals list", "all_", ("--all", "extra")),
        ("approvals list", "as_json", ("--json", "extra")),
        ("approvals approve", "approval_id", ("apr-nope", "--by", "alice", "--reason", "ok")),
        ("approvals approve", "by", (approval, "--reason", "ok")),
        ("approvals approve", "by", (approval, "--by", " ", "--reason", "ok")),
        ("approvals approve", "reason", (approval, "--by", "alice", "--reason", "")),
        ("approvals approve", "arguments_hash", (approval, "--by", "alice", "--reason", "ok", "--hash", "9fbf")),
        ("approvals approve", "arguments_hash", (approval, "--by", "alice", "--reason", "ok", "--hash", "0" * 64)),
        ("approvals approve", "arguments_hash", (approval, "--by", "alice", "--reason", "ok", "--hash", "xyz" * 5)),
        ("approvals reject", "approval_id", ("apr-nope", "--by", "bob", "--reason", "no")),
        ("approvals reject", "by", (approval, "--by", "", "--reason", "no")),
        ("approvals reject", "reason", (approval, "--by", "bob")),
        ("runs list", "status", ("--status", "sleeping")),
        ("runs list", "since", ("--since", "yesterday")),
        ("runs list", "limit", ("--limit", "0")),
        ("runs list", "as_json", ("--json", "--status", "sleeping")),
        ("runs resume", "run_ids", ("nope",)),
        ("runs resume", "agents", ("--agents", "not-a-path")),
        ("runs resume", "agents", ("--agents", "agentjournal.nothing:agents")),
        ("runs resume", "agents", ("--agents", "agentjournal.agents.demo:DEMO_PRICE")),
        ("runs resume", "follow", ("--follow", "--every", "0")),
        ("runs resume", "every", ("--every", "-1")),
        ("runs resume", "stalled_after", ("--stalled-after", "5 minutes")),
        ("runs show", "run_id", ("nope",)),
        ("runs show", "step", (s.waiting_run_id, "--step", "-1")),
        ("runs show", "step", (s.waiting_run_id, "--step", "99")),
        ("runs show", "as_json", ("nope", "--json")),
        ("runs cancel", "run_id", ("nope",)),
        ("runs replay", "run_id", ("nope",)),
        ("runs replay", "agents", (s.waiting_run_id, "--agents", "not-a-path")),
        ("policy check", "path", (f"{MISSING}/policy.yaml",)),
        ("policy check", "path", (str(folder),)),
        ("policy check", "path", (str(bad_policy),)),
        ("policy check", "agents", (policy, "--agents", "agentjournal.nothing:agents")),
        ("policy check", "as_json", (str(bad_policy), "--json")),
        ("policy eval", "path", (f"{MISSING}/policy.yaml", "query_sql")),
        ("policy eval", "tool", (policy,)),
        ("policy eval", "arguments", (policy, "query_sql", "{not json")),
        ("policy eval", "arguments", (policy, "query_sql", "[1]")),
        ("policy eval", "metric", (policy, "query_sql", "{}", "--metric", "karma=3")),
        ("policy eval", "metric", (policy, "query_sql", "{}", "--metric", "tickets_created=many")),
        ("policy replay", "path", (str(bad_policy),)),
        ("policy replay", "show_all", (f"{MISSING}/policy.yaml", "--all")),
        ("policy replay", "fail_on_change", (policy, "--fail-on-change")),  # it changes: exit 1, said why
        ("policy replay", "fail_on", (policy, "--fail-on", "sideways")),
        ("policy replay", "as_json", (str(bad_policy), "--json")),
        ("projections status", "as_json", ("--json", "extra")),
        ("projections rebuild", "name", ("nope",)),
        ("projections rebuild", "batch_size", ("runs", "--batch-size", "0")),
        ("projections wait", "name", ("nope", "--position", "1")),
        ("projections wait", "position", ("runs",)),
        ("projections wait", "position", ("runs", "--position", "999999", "--timeout", "0.05")),
        ("projections wait", "timeout", ("runs", "--position", "1", "--timeout", "-1")),
        ("projections dead-letters", "name", ("nope",)),
        ("projections dead-letters", "as_json", ("nope", "--json")),
        ("metrics", "eval_db", ("--evals", "--eval-db", "nosuchscheme://x")),
        ("alerts", "eval_db", ("--check", "--eval-db", "nosuchscheme://x")),
        ("worker", "eval_db", ("--eval-db", "nosuchscheme://x")),
        ("worker", "messaging", ("-m", "agentjournal.nothing:relays")),
        ("worker", "messaging", ("-m", "agentjournal.agents.demo:DEMO_PRICE")),
        ("worker", "sagas", ("--sagas", "agentjournal.nothing:SAGAS")),
        ("worker", "sagas_every", ("--sagas", "agentjournal.agents.demo_sagas:SAGAS", "--sagas-every", "0")),
        ("outbox status", "relay", ("--relay", "nobody")),
        ("outbox status", "as_json", ("--relay", "nobody", "--json")),
        ("outbox retry", "dispatch_ids", ("6b2f4f8e-0000-4000-8000-000000000000",)),
        ("outbox retry", "relay", ("--relay", "nobody")),
        *_wrong_eval_arguments(s),
        *_wrong_saga_arguments(s),
        *_wrong_key_arguments(s),
    ]


def _wrong_key_arguments(s: Sample) -> list[tuple[str, str, tuple[str, ...]]]:
    """The API key commands: the sample has an active key of acme and a revoked one of globex."""
    create = ("--tenant", "acme", "--role", "read", "--name", "ci")
    return [
        ("keys create", "tenant", ("--tenant", "acme corp", *create[2:])),
        ("keys create", "tenant", ("--tenant", "", *create[2:])),
        ("keys create", "role", (*create[:2], "--role", "owner", *create[4:])),
        ("keys create", "name", (*create[:4], "--name", " ")),
        ("keys create", "name", (*create[:4], "--name", "x" * 201)),
        ("keys create", "by", (*create, "--by", " ")),
        ("keys create", "as_json", ("--tenant", "acme", "--role", "root", "--name", "ci", "--json")),
        ("keys list", "tenant", ("--tenant", "no such tenant")),
        ("keys list", "as_json", ("--tenant", "", "--json")),
        ("keys revoke", "key_id", ("nope",)),
        ("keys revoke", "key_id", ("ajk_000000000000",)),
        ("keys revoke", "by", (s.revoked_key_id, "--by", "\t")),
    ]


def _wrong_saga_arguments(s: Sample) -> list[tuple[str, str, tuple[str, ...]]]:
    """The saga commands: the sample's sagas are the demo's, one completed and one rolled back."""
    sagas = ("--sagas", "agentjournal.agents.demo_sagas:SAGAS")
    return [
        ("sagas list", "status", ("--status", "stuck")),
        ("sagas list", "as_json", ("--json", "--status", "stuck")),
        ("sagas show", "saga_id", ("nope",)),
        ("sagas show", "as_json", ("nope", "--json")),
        ("sagas resume", "saga_ids", ("nope", *sagas)),
        ("sagas resume", "sagas", ("--sagas", "not-a-path")),
        ("sagas resume", "sagas", ("--sagas", "agentjournal.nothing:SAGAS")),
        ("sagas resume", "sagas", ("--sagas", "agentjournal.agents.demo_sagas:SLOT")),
        ("sagas retry", "saga_id", ("nope", *sagas)),
        ("sagas retry", "saga_id", (s.saga_id, *sagas)),  # rolled back cleanly: nothing to repair
        ("sagas retry", "saga_id", ("book-demo-lead-456", *sagas)),  # completed
        ("sagas retry", "sagas", (s.saga_id, "--sagas", "agentjournal.agents.demo:agents")),
    ]


def _wrong_eval_arguments(s: Sample) -> list[tuple[str, str, tuple[str, ...]]]:
    """The evaluator's commands, on the sample's evaluation journal."""
    at = ("--eval-db", s.eval_url)
    bad_references = s.folder / "bad-references.jsonl"
    bad_references.write_text('{"expected": "no id"}\n')
    out = ("--out", str(s.folder / "dataset.jsonl"))
    replay = ("--dataset", str(s.dataset), "--candidates", str(s.candidates), *at)
    gate = ("--evaluation", s.evaluation_id, "--min-quality", "0.5", *at)
    return [
        ("eval dataset", "out", ("--out", str(s.folder))),
        ("eval dataset", "out", ("--out", f"{MISSING}/dataset.jsonl")),
        ("eval dataset", "agent", (*out, "--agent", "nobody")),
        ("eval dataset", "route", (*out, "--route", "nowhere")),
        ("eval dataset", "tenant", (*out, "--tenant", "nobody")),
        ("eval dataset", "since", (*out, "--since", "yesterday")),
        ("eval dataset", "until", (*out, "--since", "1d", "--until", "2d")),
        ("eval dataset", "status", (*out, "--status", "sleeping")),
        ("eval dataset", "run", (*out, "--run", "nope")),
        ("eval dataset", "selection", (*out, "--selection", f"{MISSING}/selection.yaml")),
        ("eval dataset", "references", (*out, "--references", str(bad_references))),
        ("eval dataset", "limit", (*out, "--limit", "0")),
        ("eval dataset", "as_json", (*out, "--json", "--status", "sleeping")),
        ("eval replay", "dataset", ("--dataset", f"{MISSING}/runs.jsonl", "--candidate", "prompt-v42")),
        ("eval replay", "candidate", (*replay, "--candidate", "prompt-v99")),
        ("eval replay", "candidates", ("--dataset", str(s.dataset), "--candidate", "x", "--candidates", MISSING)),
        ("eval replay", "agents", (*replay, "--candidate", "prompt-v42", "--agents", "not-a-path")),
        ("eval replay", "repeat", (*replay, "--candidate", "prompt-v42", "--repeat", "0")),
        ("eval replay", "concurrency", (*replay, "--candidate", "prompt-v42", "--concurrency", "0")),
        ("eval replay", "unmatched", (*replay, "--candidate", "prompt-v42", "--unmatched", "maybe")),
        (
            "eval replay",
            "live_tool",
            (*replay, "--candidate", "prompt-v42", "--unmatched", "live", "--live-tool", "issue_refund"),
        ),
        ("eval replay", "stub", (*replay, "--candidate", "prompt-v42", "--unmatched", "stub", "--stub", "x={no")),
        ("eval replay", "stub", (*replay, "--candidate", "prompt-v42", "--stub", "lookup_order={}")),
        ("eval replay", "eval_db", (*replay[:4], "--candidate", "prompt-v42", "--eval-db", "nosuchscheme://x")),
        ("eval replay", "as_json", (*replay, "--candidate", "prompt-v99", "--json")),
        ("eval score", "evaluation", ("--evaluation", "nope", *at)),
        ("eval score", "candidate", ("--candidate", "nobody", *at)),
        ("eval score", "metrics", ("--metrics", "karma", *at)),
        ("eval score", "scorer", ("--scorer", "agentjournal.agents.demo:DEMO_PRICE", *at)),
        ("eval score", "judge", ("--judge", "aj_no_such_module:judge", *at)),
        ("eval score", "rubric", ("--rubric", "be kind", *at)),
        ("eval score", "eval_db", ("--eval-db", "nosuchscheme://x")),
        ("eval score", "as_json", ("--evaluation", "nope", "--json", *at)),
        ("eval gate", "evaluation", ("--evaluation", "nope", "--min-quality", "0.5", *at)),
        ("eval gate", "candidate", ("--candidate", "nobody", "--min-quality", "0.5", *at)),
        ("eval gate", "baseline", (*gate, "--baseline", "nobody")),
        ("eval gate", "min_quality", ("--evaluation", s.evaluation_id, "--min-quality", "1.5", *at)),
        ("eval gate", "max_quality_drop", (*gate, "--max-quality-drop", "-0.1")),
        ("eval gate", "max_cost_delta", (*gate, "--max-cost-delta", "cheap")),
        ("eval gate", "max_latency_delta", (*gate, "--max-latency-delta", "-1")),
        ("eval gate", "max_policy_regressions", (*gate, "--max-policy-regressions", "-1")),
        ("eval gate", "policy_direction", (*gate, "--policy-direction", "sideways")),
        ("eval gate", "min_items", (*gate, "--min-items", "-1")),
        ("eval gate", "confidence", (*gate, "--confidence", "0.2")),
        ("eval gate", "markdown", (*gate, "--markdown", f"{MISSING}/gate.md")),
        ("eval gate", "junit", (*gate, "--junit", str(s.folder))),
        ("eval gate", "html", (*gate, "--html", f"{MISSING}/gate.html")),
        ("eval gate", "eval_db", ("--min-quality", "0.5", "--eval-db", f"sqlite:///{MISSING}/evals.db")),
        ("eval gate", "as_json", ("--evaluation", "nope", "--min-quality", "0.5", "--json", *at)),
        ("eval list", "eval_db", ("--eval-db", f"sqlite:///{s.folder / 'no-evals.db'}")),
        ("eval list", "as_json", ("--json", "--eval-db", "nosuchscheme://x")),
        ("eval show", "evaluation", ("nope", *at)),
        ("eval show", "eval_db", ("--eval-db", "nosuchscheme://x")),
        ("eval show", "as_json", ("nope", "--json", *at)),
    ]


def _parameters(command: object, *, flags: bool = False) -> list[str]:
    """The command's parameters that take a value (with `flags`, its on/off switches too)."""
    return [
        param.name
        for param in getattr(command, "params", [])
        if param.name and param.name != "help" and (flags or not getattr(param, "is_flag", False))
    ]


def test_every_parameter_of_every_command_has_a_wrong_value(sample: Sample) -> None:
    covered = {(command, parameter) for command, parameter, _ in wrong_arguments(sample)}
    uncovered = [
        (path, name)
        for path, command in command_tree()
        for name in _parameters(command)
        if (path, name) not in covered and (path, name) not in ANY_VALUE_FITS
    ]
    assert not uncovered, f"give these a wrong value in wrong_arguments(), or list them in ANY_VALUE_FITS: {uncovered}"
    tree = dict(command_tree())
    stale = sorted(key for key in covered | set(ANY_VALUE_FITS) if key[1] not in _parameters(tree[key[0]], flags=True))
    assert not stale, f"no such parameter: {stale}"


def _assert_a_message(result: Result, what: str) -> None:
    output = result.output
    assert result.exit_code in (1, 2), f"{what}: exit code {result.exit_code}\n{output}"
    assert "Traceback" not in output and "unexpected error" not in output, f"{what}:\n{output}"
    assert result.stderr.strip(), f"{what}: no message on stderr\n{output}"


def test_a_wrong_argument_is_a_message_never_a_traceback(
    sample: Sample, invoke_at: Callable[[int], Invoke], tmp_path: Path
) -> None:
    invoke = invoke_at(120)
    failures = []
    for command, parameter, arguments in wrong_arguments(sample):
        result = invoke(sample.url, *command.split(), *arguments)
        try:
            _assert_a_message(result, f"agentjournal {command} {' '.join(arguments)} ({parameter})")
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(("path", "command"), command_tree(), ids=[path for path, _ in command_tree()])
def test_an_unknown_option_is_typers_usage_error(
    path: str, command: object, sample: Sample, invoke_at: Callable[[int], Invoke]
) -> None:
    result = invoke_at(80)(sample.url, *path.split(), "--no-such-option")
    _assert_a_message(result, path)
    assert result.exit_code == 2 and "No such option" in result.output


def test_no_journal_where_the_url_points_is_a_message(invoke_at: Callable[[int], Invoke], tmp_path: Path) -> None:
    invoke = invoke_at(80)
    for args in (["streams"], ["approvals", "list"], ["runs", "list"], ["metrics"], ["explain", "run-1"]):
        _assert_a_message(invoke(f"sqlite:///{tmp_path / 'nothing.db'}", *args), " ".join(args))
        _assert_a_message(invoke("nosuchscheme://x", *args), " ".join(args))
        _assert_a_message(invoke(f"sqlite:///{MISSING}/x.db", *args), " ".join(args))


def test_one_root_for_every_library_error() -> None:
    for error in (
        JournalError,
        PolicyError,
        ModelError,
        ToolArgumentsError,
        UnknownToolError,
        TransientToolError,
        PlanValidationError,
        AggregateLoadError,
        MemoryItemNotFound,
        ProjectionError,
    ):
        assert issubclass(error, AgentJournalError), error
    assert issubclass(PolicyError, ValueError) and issubclass(MemoryItemNotFound, LookupError)
    assert issubclass(ToolArgumentsError, ValueError) and issubclass(UnknownToolError, LookupError)


BUILTIN_ERRORS = {"Exception", "ValueError", "LookupError", "RuntimeError", "KeyError", "TypeError", "OSError"}


def test_every_error_class_of_the_library_is_under_the_root() -> None:
    """No public class of the library derives from built-in exceptions only (private ones are internal)."""
    source = Path(agentjournal.__file__).parent
    strays = []
    for module in sorted(source.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and node.name != "AgentJournalError":
                bases = {ast.unparse(base) for base in node.bases}
                if bases and bases <= BUILTIN_ERRORS | {"ConnectionError", "BaseException"}:
                    strays.append(f"{module.relative_to(source)}: {node.name}({', '.join(sorted(bases))})")
    assert not strays, f"error classes not under AgentJournalError: {strays}"
