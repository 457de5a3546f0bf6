"""Imports: checked whole before anything is written, idempotent, and finished by running them again.

Also what every backend must store alike for a journal to move between them: JSON of any depth
up to the one limit every backend shares (MAX_JSON_DEPTH).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from agentjournal import InvalidEventError, Journal, NewEvent
from agentjournal.journal import ExportFile, ImportInterruptedError, ImportRefusedError
from agentjournal.journal.envelope import MAX_JSON_DEPTH

from .base import ConformanceBase, new_events


def nested(depth: int) -> dict[str, Any]:
    """A JSON object `depth` levels deep (the outermost one counted)."""
    value: dict[str, Any] = {"leaf": True}
    for level in range(depth - 1):
        value = {"level": level, "inner": value}
    return value


def _source(tmp_path: Path, name: str = "source.db") -> list[dict[str, Any]]:
    """Three interleaved streams in a SQLite journal, one of them closed; returns its export."""
    with Journal.open(f"sqlite:///{tmp_path / name}", create=True) as source:
        for step in range(4):
            for run in (1, 2, 3):
                source.append(f"run-{run}", [NewEvent("Step", {"run": run, "step": step}, actor="agent")])
        source.append("run-2", [NewEvent("RunCompleted", {"ok": True}, closes_stream=True)])
        return [event.to_dict() for event in source.iter_all()]


def _exported(journal: Journal) -> list[dict[str, Any]]:
    return [event.to_dict() | {"position": 0} for event in journal.iter_all()]


def _positionless(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record | {"position": 0} for record in records]


class ImportConformance(ConformanceBase):
    def test_importing_the_same_records_again_changes_nothing(self, journal: Journal, tmp_path: Path) -> None:
        records = _source(tmp_path)
        first = journal.import_events(records)
        assert (first.imported, first.already_present, first.streams) == (len(records), 0, 3)
        for again in (records, iter(records)):  # a list is checked first; an iterator as it comes
            report = journal.import_events(again)
            assert (report.imported, report.already_present, report.changed) == (0, len(records), False)
        assert journal.head_position() == len(records)
        assert _exported(journal) == _positionless(records)
        assert journal.verify().ok

    def test_an_import_stopped_part_way_is_finished_by_running_it_again(self, journal: Journal, tmp_path: Path) -> None:
        records = _source(tmp_path)
        batches = 0

        def fail_the_fourth_batch() -> None:
            nonlocal batches
            batches += 1
            if batches == 4:
                raise ConnectionError("the connection dropped")

        journal._before_commit = fail_the_fourth_batch
        with pytest.raises(ConnectionError):
            journal.import_events(records)
        journal._before_commit = None
        assert journal.head_position() == 3  # three whole batches (one event each), nothing of the fourth
        report = journal.import_events(records)
        assert (report.imported, report.already_present) == (len(records) - 3, 3)
        assert _exported(journal) == _positionless(records)
        assert journal.verify().ok

    def test_what_an_interrupted_import_left_is_skipped_by_a_one_shot_iterator_too(
        self, journal: Journal, tmp_path: Path
    ) -> None:
        records = _source(tmp_path)
        journal.import_events(records[:7])  # stopped after 7 records: run-2 stored up to version 2
        report = journal.import_events(record for record in records)
        assert (report.imported, report.already_present) == (len(records) - 7, 7)
        assert _exported(journal) == _positionless(records)
        assert journal.verify().ok

    def test_a_stream_continued_since_the_last_import_imports_only_what_is_new(
        self, journal: Journal, tmp_path: Path
    ) -> None:
        with Journal.open(f"sqlite:///{tmp_path / 'source.db'}", create=True) as source:
            source.append("run-1", new_events(3))
            journal.import_events([event.to_dict() for event in source.iter_all()])
            source.append("run-1", new_events(2))
            source.append("run-9", new_events(1))
            records = [event.to_dict() for event in source.iter_all()]
        report = journal.import_events(records)
        assert (report.imported, report.already_present) == (3, 3)
        assert journal.stream_version("run-1") == 5
        assert journal.verify().ok

    def test_an_input_out_of_order_is_refused_naming_every_bad_record(self, journal: Journal, tmp_path: Path) -> None:
        records = _source(tmp_path)
        shuffled = list(records)
        shuffled[1], shuffled[4] = shuffled[4], shuffled[1]  # run-2: version 2 before version 1
        with pytest.raises(ImportRefusedError) as refused:
            journal.import_events(shuffled)
        message = str(refused.value)
        assert "record 5: stream 'run-2' version 1 comes after its version 2 (record 2)" in message
        assert message.endswith("nothing imported")
        assert journal.head_position() == 0
        truncated = records[:5] + records[6:]  # run-3 version 2 is missing
        with pytest.raises(ImportRefusedError, match=r"record 8: stream 'run-3' jumps from version 1 \(record 3\)"):
            journal.import_events(truncated)
        assert journal.head_position() == 0

    def test_every_bad_record_is_listed_and_nothing_is_imported(self, journal: Journal, tmp_path: Path) -> None:
        records: list[Any] = [dict(record) for record in _source(tmp_path)]
        records[2]["data"] = {"changed": True}
        records[5] = ["not", "an", "object"]
        del records[8]["hash"]
        with pytest.raises(ImportRefusedError) as refused:
            journal.import_events(records)
        problems = refused.value.problems
        assert problems[0].startswith("record 3 (stream 'run-3' version 1): its hash does not match its content")
        assert problems[1] == "record 6: expected a JSON object, got list"
        assert problems[2] == "record 9: not an exported envelope (it has no 'hash')"
        assert str(refused.value).startswith(f"{len(problems)} problems, nothing imported:\n  record 3")
        assert journal.head_position() == 0

    def test_a_different_history_of_a_stream_is_refused_before_anything_is_written(
        self, journal: Journal, tmp_path: Path
    ) -> None:
        records = _source(tmp_path)
        journal.append("run-3", new_events(2))  # another run-3, stored here first
        conflict = r"record 6: stream 'run-3' version 2 is stored in this journal with different content"
        with pytest.raises(ImportRefusedError, match=conflict):
            journal.import_events(records)
        assert journal.head_position() == 2  # run-1 and run-2 were not imported either
        with pytest.raises(ImportInterruptedError, match="record 3: stream 'run-3' version 1 is stored") as stopped:
            journal.import_events(iter(records))  # read once: stopped when run-3 comes up
        assert stopped.value.imported == 2  # run-1 and run-2, version 1: what came before
        assert journal.head_position() == 4

    def test_an_event_id_stored_in_another_stream_is_named(self, journal: Journal, tmp_path: Path) -> None:
        records = _source(tmp_path)
        taken = records[4]["event_id"]  # run-2 version 2
        journal.append("elsewhere", [NewEvent("Noted", event_id=taken)])
        with pytest.raises(ImportInterruptedError) as stopped:
            journal.import_events(records)
        assert f"import stopped at record 5: event {taken}: already stored as version 1 of stream 'elsewhere'" in (
            str(stopped.value)
        )
        assert stopped.value.imported == 4
        assert journal.head_position() == 5
        assert journal.verify().ok

    def test_an_iterator_stopped_by_a_bad_record_says_what_was_imported(self, journal: Journal, tmp_path: Path) -> None:
        records: list[Any] = [dict(record) for record in _source(tmp_path)]
        records[6]["actor"] = "mallory"
        with pytest.raises(ImportInterruptedError) as stopped:
            journal.import_events(iter(records))
        assert stopped.value.imported == 6
        assert "import stopped at record 7" in str(stopped.value)
        assert "6 event(s) were imported before it" in str(stopped.value)
        assert "run the import again to finish it" in str(stopped.value)
        assert journal.head_position() == 6

    def test_an_export_file_names_the_bad_line_and_a_truncated_end(self, journal: Journal, tmp_path: Path) -> None:
        records = _source(tmp_path)
        path = tmp_path / "runs.jsonl"
        lines = [orjson.dumps(record) for record in records]
        path.write_bytes(b"\n".join(lines[:-1]) + b"\n" + lines[-1][: len(lines[-1]) // 2])
        with pytest.raises(ImportRefusedError, match=rf"{re.escape(str(path))}:{len(records)}: not a JSON line"):
            journal.import_events(ExportFile(path))
        with pytest.raises(ImportRefusedError, match="the file ends in the middle of it"):
            ExportFile(path).check()
        assert journal.head_position() == 0
        path.write_bytes(b"\n".join(lines) + b"\n\n")  # a blank line is fine
        assert journal.import_events(ExportFile(path)).imported == len(records)
        assert journal.import_events(ExportFile(path)).already_present == len(records)

    # ----- what every backend stores alike ------------------------------------------------------

    def test_json_as_deep_as_the_shared_limit_is_stored_and_deeper_is_refused(self, journal: Journal) -> None:
        deep = nested(MAX_JSON_DEPTH)
        stored = journal.append("deep", [NewEvent("Deep", deep, metadata=nested(40))]).events[0]
        assert journal.read_stream("deep")[0].data == deep
        assert journal.get_event(stored.event_id).hash == stored.hash
        for data, metadata, part in ((nested(MAX_JSON_DEPTH + 1), {}, "data"), ({}, nested(300), "metadata")):
            message = rf"stream 'deep', event 1 of 1 \(Deep\): {part} is nested more than {MAX_JSON_DEPTH} levels"
            with pytest.raises(InvalidEventError, match=message):
                journal.append("deep", [NewEvent("Deep", data, metadata=metadata)])
        assert journal.head_position() == 1
        assert journal.verify().ok

    def test_deep_json_moves_from_sqlite_with_its_hashes(self, journal: Journal, tmp_path: Path) -> None:
        with Journal.open(f"sqlite:///{tmp_path / 'source.db'}", create=True) as source:
            for depth in (31, 32, 33, 100, MAX_JSON_DEPTH):
                source.append(f"deep-{depth}", [NewEvent("Deep", nested(depth), metadata=nested(depth // 2 + 1))])
            records = [event.to_dict() for event in source.iter_all()]
        assert journal.import_events(records).imported == 5
        assert _exported(journal) == _positionless(records)
        assert journal.verify().ok
        with Journal.open(f"sqlite:///{tmp_path / 'back.db'}", create=True) as back:  # and out again
            assert back.import_events([event.to_dict() for event in journal.iter_all()]).imported == 5
            assert back.verify().ok
