"""Datasets: selected from the journal, written as JSON Lines, read back validated line by line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from agentjournal.evals import Dataset, DatasetError, Reference, Selection, build_dataset, read_references
from agentjournal.journal import Journal
from agentjournal.testing.synthetic import append_runs, synthetic_runs

from .evaluator_helpers import write_demo


def test_a_dataset_of_the_demo_holds_each_run_whole(sqlite_or_postgres_url: str, tmp_path: Path) -> None:
    with Journal.open(sqlite_or_postgres_url) as journal:
        write_demo(journal)
        dataset = build_dataset(journal)
    assert [item.id for item in dataset.items] == ["refund-8842", "ops-7731"]
    refund, ops = dataset.items
    assert refund.input == "I want a refund for order ORD-5521" and refund.agent == "triage-agent"
    assert refund.trajectory.tool_names == ["lookup_order", "check_refund_policy", "issue_refund"]
    assert refund.trajectory.outcome.status == "completed" and refund.trajectory.usage.model_calls == 5
    decisions = {(step.tool, step.decision, step.approval) for step in ops.trajectory.tools}
    assert ("query_sql", "deny", None) in decisions
    assert ("send_email", "require_human_approval", "approved") in decisions
    assert ops.recording[0].type == "RunStarted" and ops.recording[-1].type == "RunCompleted"
    path = dataset.write(tmp_path / "runs.jsonl")
    again = Dataset.read(path)
    assert again.items == dataset.items and again.version == dataset.version
    assert again.header.source.split(":")[0] in ("sqlite", "postgresql")


def test_the_version_follows_the_content_not_the_formatting(sqlite_url: str, tmp_path: Path) -> None:
    with Journal.open(sqlite_url) as journal:
        write_demo(journal)
        dataset = build_dataset(journal)
    path = dataset.write(tmp_path / "runs.jsonl")
    header, *lines = path.read_bytes().splitlines()
    pretty = tmp_path / "pretty.jsonl"
    pretty.write_bytes(header + b"\n" + b"\n".join(orjson.dumps(orjson.loads(line)) + b"\n" for line in lines))
    assert Dataset.read(pretty).version == dataset.version
    labelled = dataset.with_references({"refund-8842": Reference(expected="Refunded $44.99", labels=["partial"])})
    assert labelled.version != dataset.version
    assert Dataset.read(labelled.write(tmp_path / "labelled.jsonl")).items[0].reference == Reference(
        expected="Refunded $44.99", labels=["partial"]
    )


def test_a_selection_narrows_a_generated_journal_of_hundreds_of_runs(sqlite_or_postgres_url: str) -> None:
    with Journal.open(sqlite_or_postgres_url) as journal:
        append_runs(journal, synthetic_runs(300))
        everything = build_dataset(journal)
        refunds = build_dataset(journal, Selection(agent="refund-agent", tenant="acme"))
        two = build_dataset(journal, Selection(run_ids=["run-syn-7-0000003", "syn-7-0000005"]))
        aborted = build_dataset(journal, Selection(status=["aborted"]))
        with pytest.raises(DatasetError, match="no run matches the selection"):
            build_dataset(journal, Selection(since=datetime.now(UTC) + timedelta(days=1)))
        with pytest.raises(DatasetError, match=r"no such run .*: nope"):
            build_dataset(journal, Selection(run_ids=["syn-7-0000003", "nope"]))
    assert {item.trajectory.outcome.status for item in everything.items} == {"completed", "aborted"}
    assert 250 <= len(everything.items) <= 300  # the finished runs (by default)
    assert refunds.items and all(item.agent == "refund-agent" and item.tenant_id == "acme" for item in refunds.items)
    assert [item.id for item in two.items] == ["syn-7-0000003", "syn-7-0000005"]
    assert aborted.items and all(item.trajectory.outcome.status == "aborted" for item in aborted.items)


def test_a_saved_selection_is_a_yaml_file(tmp_path: Path) -> None:
    saved = tmp_path / "refunds.yaml"
    saved.write_text("agent: refund-agent\nsince: 2026-11-01T00:00:00Z\nstatus: [completed]\nlimit: 50\n")
    assert Selection.load(saved) == Selection(
        agent="refund-agent", since=datetime(2026, 11, 1, tzinfo=UTC), status=["completed"], limit=50
    )
    saved.write_text("agent: refund-agent\nlimitt: 5\n")
    with pytest.raises(DatasetError, match="limitt: Extra inputs are not permitted"):
        Selection.load(saved)


@pytest.fixture
def written(sqlite_url: str, tmp_path: Path) -> Path:
    with Journal.open(sqlite_url) as journal:
        write_demo(journal)
        return build_dataset(journal).write(tmp_path / "runs.jsonl")


def _edit(path: Path, line: int, change: object) -> None:
    lines = path.read_bytes().splitlines()
    lines[line - 1] = change(lines[line - 1]) if callable(change) else bytes(str(change), "utf-8")
    path.write_bytes(b"\n".join(lines) + b"\n")


def _item(change: object) -> object:
    def edit(raw: bytes) -> bytes:
        item = orjson.loads(raw)
        change(item)  # type: ignore[operator]
        return orjson.dumps(item)

    return edit


@pytest.mark.parametrize(
    ("line", "change", "problem"),
    [
        (1, '{"hello": 1}', ":1: the first line is not a dataset header"),
        (1, '{"agentjournal_dataset": 9}', ":1: dataset format 9; this agentjournal reads format 1"),
        (2, "{not json", ":2: not JSON"),
        (3, "[1, 2]", ":3: a run is a JSON object"),
        (2, _item(lambda item: item.pop("input")), ":2: input: Field required"),
        (2, _item(lambda item: item.update(colour="red")), ":2: colour: Extra inputs are not permitted"),
        (3, _item(lambda item: item.update(id="refund-8842")), ":3: run refund-8842 is already item 2"),
        (
            2,
            _item(lambda item: item["trajectory"]["outcome"].update(response="Edited.")),
            ":2: run refund-8842: the trajectory does not match the recording",
        ),
        (
            2,
            _item(lambda item: item.update(recording=item["recording"][1:])),
            ":2: run refund-8842: the recording must",
        ),
    ],
)
def test_a_bad_line_is_named_with_its_problem(written: Path, line: int, change: object, problem: str) -> None:
    _edit(written, line, change)
    with pytest.raises(DatasetError) as caught:
        Dataset.read(written)
    assert problem in str(caught.value) and str(written) in str(caught.value)


def test_missing_and_empty_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read the dataset: No such file"):
        Dataset.read(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DatasetError, match="empty: a dataset starts with its header line"):
        Dataset.read(tmp_path / "empty.jsonl")


def test_a_dataset_that_cannot_be_written_says_where(written: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"missing/runs\.jsonl: cannot write the dataset: No such file"):
        Dataset.read(written).write(tmp_path / "missing" / "runs.jsonl")
    assert not list(tmp_path.glob("**/*.partial"))


def test_references_come_from_a_json_lines_file(tmp_path: Path) -> None:
    refs = tmp_path / "refs.jsonl"
    refs.write_text('{"id": "run-refund-8842", "expected": "Done.", "tools": ["lookup_order"]}\n\n{"expected": "x"}\n')
    with pytest.raises(DatasetError, match=r"refs.jsonl:3: expected \{\"id\": run_id"):
        read_references(refs)
    refs.write_text('{"id": "refund-8842", "expected": "Done.", "tools": ["lookup_order"]}\n')
    assert read_references(refs) == {"refund-8842": Reference(expected="Done.", tools=["lookup_order"])}
