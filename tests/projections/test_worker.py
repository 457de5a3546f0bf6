"""The worker loop in process: fair shares of the projections, periodic jobs, leases released on stop."""

from __future__ import annotations

import threading

import pytest

from agentjournal.journal import Journal
from agentjournal.messaging import LeaseRegistry
from agentjournal.projections import PeriodicJob, RunsProjection, Worker, builtin_projections
from agentjournal.testing.synthetic import append_runs, synthetic_runs


def _owners(journal: Journal) -> dict[str, str]:
    return {info.name: info.owner for info in LeaseRegistry(journal).leases() if info.held}


def test_two_workers_split_the_projections_fairly(journal: Journal) -> None:
    with Journal.open(journal.url) as other:
        a = Worker(journal, builtin_projections(), node="node-a", ttl=30)
        b = Worker(other, builtin_projections(), node="node-b", ttl=30)
        a.lease_round()
        assert len(a.runners) == 6  # alone: everything
        b.lease_round()  # two live nodes now, but node-a still holds every lease
        assert len(b.runners) == 0
        a.lease_round()  # node-a sees node-b and hands three projections over
        b.lease_round()
        assert (len(a.runners), len(b.runners)) == (3, 3)
        owners = _owners(journal)
        assert {name for name in owners if name.startswith("node:")} == {"node:node-a", "node:node-b"}
        assert sorted(owner for name, owner in owners.items() if name.startswith("projection:")) == [
            "node-a",
            "node-a",
            "node-a",
            "node-b",
            "node-b",
            "node-b",
        ]
        a.release_all()
        b.release_all()
        assert _owners(journal) == {}


def test_worker_applies_runs_its_jobs_and_releases_its_leases_when_stopped(
    journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    append_runs(journal, synthetic_runs(10))
    ran = threading.Event()

    def broken() -> None:
        raise RuntimeError("a bug in a job")

    jobs = [PeriodicJob("broken", 60, broken), PeriodicJob("alerts", 60, ran.set)]
    worker = Worker(journal, builtin_projections(), node="solo", ttl=0.6, jobs=jobs)
    head = journal.head_position()

    def caught_up() -> bool:
        rows = journal.query("SELECT min(position) FROM aj_projections")
        return bool(ran.is_set() and rows[0][0] == head)

    worker.run(caught_up, idle_timeout=0.05)
    assert journal.query("SELECT count(*) FROM aj_rm_runs")[0][0] == 10
    assert _owners(journal) == {}  # released on the way out, so another node can start at once
    tokens = {info.name: info.token for info in LeaseRegistry(journal).leases()}
    assert tokens["job:alerts"] == 1 and tokens["projection:runs"] == 1
    assert "solo: job broken failed" in caplog.text  # logged; the projections ran on


def test_a_projection_no_other_node_can_run_is_not_orphaned(journal: Journal) -> None:
    with Journal.open(journal.url) as other:
        everything = Worker(journal, builtin_projections(), node="node-a", ttl=30)
        only_runs = Worker(other, [RunsProjection()], node="node-b", ttl=30)
        only_runs.lease_round()  # node-b takes runs, its only projection
        for _ in range(3):  # node-a: first its fair share (3 of 6), then what nobody else took
            everything.lease_round()
            only_runs.lease_round()
        owners = _owners(journal)
        assert owners.pop("projection:runs") == "node-b"
        assert sorted(name for name, owner in owners.items() if name.startswith("projection:")) == [
            "projection:evaluations",
            "projection:policy_decisions",
            "projection:search",
            "projection:tool_decisions",
            "projection:tool_usage",
        ]
        assert set(_owners(journal).values()) == {"node-a", "node-b"}
        everything.lease_round()
        assert len(everything.runners) == 5  # stable: the rescued ones are not handed back and forth
        everything.release_all()
        only_runs.release_all()
