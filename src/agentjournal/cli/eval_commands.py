"""The offline evaluator's commands: seed 001's replay, score and gate, plus the dataset they read.

    agentjournal eval dataset --out eval/runs.jsonl --agent refund-agent --since 7d
    agentjournal eval replay --dataset eval/runs.jsonl --candidate prompt-v42
    agentjournal eval score --metrics quality,cost,latency,policy
    agentjournal eval gate --min-quality 0.82 --max-cost-delta 0.15 --max-policy-regressions 0

`dataset` reads the production journal (--db); the others read and write the evaluation
journal beside it (--eval-db, by default `x.evals.db` next to `x.db`, or the schema
`<schema>_evals`), so replays never mix with the production runs. Each command calls one
function of `agentjournal.evals`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from agentjournal.cli import output
from agentjournal.cli.app import (
    EvalDbOption,
    app,
    console,
    errors,
    fail,
    open_evaluations,
    open_journal,
    progress_bar,
)
from agentjournal.cli.output import Col, JsonOption, print_json
from agentjournal.cli.params import moment, one_of, parse_time

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.progress import Progress

    from agentjournal.evals import EvaluationRecord, GateReport, Scorer
    from agentjournal.journal import Journal

eval_app = typer.Typer(
    no_args_is_help=True,
    help="The offline evaluator: datasets of past runs, replay with a candidate, score, gate in CI.",
)
app.add_typer(eval_app, name="eval")

EvaluationOption = Annotated[
    str,
    typer.Option("--evaluation", help="The evaluation's id, or latest (of --candidate, when given)"),
]
CandidateFilter = Annotated[
    str | None, typer.Option("--candidate", help="With --evaluation latest: the latest of this candidate")
]
RUN_STATUSES = ("new", "running", "waiting_approval", "completed", "aborted", "cancelled")


def _evaluation_id(journal: Journal, evaluation: str, candidate: str | None) -> str:
    from agentjournal.evals import latest_evaluation

    if evaluation == "latest":
        return latest_evaluation(journal, candidate=candidate)
    if candidate is not None:
        raise typer.BadParameter(
            "--candidate picks the latest evaluation; it does not go with an id", param_hint="--candidate"
        )
    return evaluation


def _counted(bar: Progress, description: str) -> Callable[[int, int], None]:
    """A progress callback `(done, total)` drawing one task of `bar`."""
    task = bar.add_task(description, total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return advance


# ----- dataset -------------------------------------------------------------------------------


@eval_app.command("dataset")
def dataset_command(
    *,
    out: Annotated[Path, typer.Option("--out", "-o", dir_okay=False, help="Write the dataset here (JSON Lines)")],
    agent: Annotated[str | None, typer.Option(help="Only runs started by this agent")] = None,
    route: Annotated[str | None, typer.Option(help="Only runs on this route")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only runs of this tenant")] = None,
    since: Annotated[
        str | None, typer.Option(help="Runs started at or after: ISO 8601 or a duration ago (7d)", callback=moment)
    ] = None,
    until: Annotated[str | None, typer.Option(help="Runs started before this", callback=moment)] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(help="Only runs ending so (repeatable; default: completed, aborted, cancelled)"),
    ] = None,
    run: Annotated[list[str] | None, typer.Option("--run", help="Exactly these runs (repeatable)")] = None,
    selection: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="A saved selection (YAML of these fields); the options above override it"),
    ] = None,
    references: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False, help='Expected answers, JSON Lines: {"id": run, "expected": ..., "labels": [...]}'
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many runs (the most recent)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Select past runs of the journal (--db) into a JSON Lines dataset, versioned by its content hash.

    Each line is one run: its input, its recorded trajectory (model calls, tool calls and results,
    policy decisions), its outcome and metrics, and its reference when --references gives one.

    --json prints one object: path, version, items, source.

    Example: agentjournal eval dataset --out eval/runs.jsonl --agent refund-agent --since 7d
    """
    from agentjournal.evals import Selection, build_dataset, read_references

    for value in status or ():
        if value not in RUN_STATUSES:
            raise typer.BadParameter(f"{value!r} is not one of: {', '.join(RUN_STATUSES)}", param_hint="--status")
    chosen = Selection.load(selection) if selection is not None else Selection()
    given: dict[str, Any] = {
        "agent": agent,
        "route": route,
        "tenant": tenant,
        "since": parse_time(since, "--since"),
        "until": parse_time(until, "--until"),
        "status": status or None,
        "run_ids": run or None,
        "limit": limit,
    }
    chosen = chosen.model_copy(update={key: value for key, value in given.items() if value is not None})
    if chosen.since and chosen.until and chosen.until <= chosen.since:
        raise typer.BadParameter("--until must be after --since", param_hint="--until")
    refs = read_references(references) if references is not None else None
    journal = open_journal()
    with progress_bar() as bar:
        dataset = build_dataset(journal, chosen, references=refs, progress=_counted(bar, "reading runs"))
    written = dataset.write(out)
    if as_json:
        print_json(
            [
                {
                    "path": str(written),
                    "version": dataset.version,
                    "items": len(dataset.items),
                    "source": dataset.header.source,
                }
            ]
        )
        return
    referenced = sum(1 for item in dataset.items if item.reference is not None)
    console.print(
        f"wrote {len(dataset.items)} run(s){f', {referenced} with references,' if refs is not None else ''} "
        f"to {written}\ndataset {dataset.version}",
        highlight=False,
        markup=False,
    )


# ----- replay --------------------------------------------------------------------------------


@eval_app.command("replay")
def replay_command(
    *,
    dataset: Annotated[Path, typer.Option("--dataset", dir_okay=False, help="The dataset (from `eval dataset`)")],
    candidate: Annotated[str, typer.Option("--candidate", help="The candidate's name in the candidates file")],
    candidates: Annotated[Path, typer.Option("--candidates", dir_okay=False, help="The candidates file (YAML)")] = Path(
        "eval/candidates.yaml"
    ),
    agents: Annotated[
        str | None,
        typer.Option(
            "--agents",
            envvar="AGENTJOURNAL_AGENTS",
            help="package.module:attr: the agent code the recorded runs ran (default: the candidates file's)",
        ),
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Replays of each item (the spread is the noise)")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Items replayed at once")] = 4,
    unmatched: Annotated[
        str,
        typer.Option(
            help="A call the recording has no result for: refuse (the item stops), stub, or live",
            callback=one_of("refuse", "stub", "live"),
        ),
    ] = "refuse",
    live_tool: Annotated[
        list[str] | None,
        typer.Option("--live-tool", help="With --unmatched live: a read-only tool that may run (repeatable)"),
    ] = None,
    stub: Annotated[
        list[str] | None,
        typer.Option("--stub", help="With --unmatched stub: NAME=JSON, what a call of that tool returns (repeatable)"),
    ] = None,
    eval_db: EvalDbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay each dataset item with the candidate: recorded tool results answer the same calls,
    and the first step where the candidate leaves the recording is noted.

    Side-effecting tools never run. Running the same command again resumes an interrupted replay.
    The replays go to the evaluation journal (--eval-db), never among the production runs.

    --json prints one object: evaluation_id, candidate, dataset_version, replays, resumed,
    diverged, stopped, and results (item, repeat, run_id, status, divergence, unanswered).

    Example: agentjournal eval replay --dataset eval/runs.jsonl --candidate prompt-v42 --repeat 3
    """
    from agentjournal.agents.runtime import load_agents
    from agentjournal.evals import Candidates, Dataset, ReplaySettings, replay_dataset_sync

    loaded = Candidates.load(candidates)
    chosen = loaded.get(candidate)
    base = load_agents(agents) if agents else loaded.base_agents()
    if base is None and chosen.agents is None:
        fail(
            f"which agent code did the recorded runs run? Pass --agents package.module:attr "
            f"or set `agents:` in {candidates}"
        )
    data = Dataset.read(dataset)
    replay_settings = ReplaySettings(
        repeat=repeat,
        unmatched=unmatched,  # type: ignore[arg-type]  # checked by its callback
        live_tools=frozenset(live_tool or ()),
        stubs=_stubs(stub or [], unmatched),
        concurrency=concurrency,
    )
    with open_evaluations(eval_db, create=True) as journal, progress_bar() as bar:
        evaluation = replay_dataset_sync(
            journal, data, chosen, base or [], replay_settings, progress=_counted(bar, f"replaying {candidate}")
        )
    stopped = [result for result in evaluation.results if result.status != "completed"]
    if as_json:
        print_json(
            [
                {
                    "evaluation_id": evaluation.evaluation_id,
                    "candidate": evaluation.candidate,
                    "dataset_version": evaluation.dataset_version,
                    "replays": len(evaluation.results),
                    "resumed": evaluation.resumed,
                    "diverged": len(evaluation.diverged),
                    "stopped": len(stopped),
                    "results": [
                        {
                            "item": r.item,
                            "repeat": r.repeat,
                            "run_id": r.run_id,
                            "status": r.status,
                            "divergence": r.divergence,
                            "unanswered": r.unanswered,
                        }
                        for r in evaluation.results
                    ],
                }
            ]
        )
        return
    columns = (
        Col("item", "key"),
        Col("#", right=True, drop=2),
        Col("status", "key"),
        Col("diverged at", drop=1),
        Col("what changed", "text"),
    )
    shown = [result for result in evaluation.results if result.divergence or result.status != "completed"]
    output.print_table(
        columns,
        [
            (
                r.item,
                str(r.repeat),
                r.status,
                f"step {r.divergence['step']} ({r.divergence['what']})" if r.divergence else "—",
                ", ".join(map(str, r.divergence.get("changes") or [])) if r.divergence else _unanswered(r.unanswered),
            )
            for r in shown
        ],
        title=f"evaluation {evaluation.evaluation_id}: the replays that diverged or stopped",
        caption=None if shown else "every replay followed its recording to the end",
    )
    resumed = f", {evaluation.resumed} done by an earlier run of it" if evaluation.resumed else ""
    console.print(
        f"{len(evaluation.results)} replay(s){resumed}: {len(evaluation.diverged)} diverged, "
        f"{len(stopped)} did not complete.\nnext: agentjournal eval score --evaluation {evaluation.evaluation_id}",
        highlight=False,
        markup=False,
    )


def _stubs(specs: list[str], unmatched: str) -> dict[str, Any]:
    """`--stub lookup_order={"status": "delivered"}` -> {"lookup_order": {...}}."""
    found: dict[str, Any] = {}
    for spec in specs:
        name, sep, raw = spec.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{spec!r} is not NAME=JSON", param_hint="--stub")
        try:
            found[name] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"{name}: the output is not JSON ({exc})", param_hint="--stub") from None
    if found and unmatched != "stub":
        raise typer.BadParameter("stubs answer only with --unmatched stub", param_hint="--stub")
    return found


def _unanswered(unanswered: list[dict[str, Any]]) -> str:
    return "; ".join(f"{call.get('tool')}: {call.get('answer')}" for call in unanswered) or ""


# ----- score ---------------------------------------------------------------------------------


def _scorers(specs: list[str], judge: str | None, rubric: str | None) -> list[Scorer] | None:
    """The quality scorers: the defaults, the --scorer objects, and the judge (None: the defaults alone)."""
    from agentjournal.evals import Judge, Scorer, default_quality_scorers, load_model
    from agentjournal.model import import_object

    if rubric is not None and judge is None:
        raise typer.BadParameter("--rubric is what --judge grades by; give --judge too", param_hint="--rubric")
    if not specs and judge is None:
        return None
    found = default_quality_scorers()
    for spec in specs:
        loaded: Any = import_object(spec, "scorer")
        if isinstance(loaded, type) and issubclass(loaded, Scorer):
            loaded = loaded()
        items = loaded if isinstance(loaded, list | tuple) else [loaded]
        if not items or not all(isinstance(item, Scorer) for item in items):
            fail(f"scorer {spec!r} is {loaded!r}, not a Scorer (or a list of them)")
        found.extend(items)
    if judge is not None:
        found.append(Judge(load_model(judge), rubric or "Is the answer correct, complete and within policy?"))
    return found


@eval_app.command("score")
def score_command(
    *,
    evaluation: EvaluationOption = "latest",
    candidate: CandidateFilter = None,
    metrics: Annotated[
        str, typer.Option(help="Comma-separated: quality, cost, latency, policy")
    ] = "quality,cost,latency,policy",
    scorer: Annotated[
        list[str] | None,
        typer.Option("--scorer", help="package.module:attr: a quality Scorer (an Assertion, ...) to add (repeatable)"),
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option(help="An LLM judge for quality: openai:<model>, anthropic:<model> or package.module:attr"),
    ] = None,
    rubric: Annotated[str | None, typer.Option(help="What the judge grades by")] = None,
    eval_db: EvalDbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score an evaluation's replays and their recorded baselines; each score is journaled.

    Cost and latency come from the recorded usage; policy counts the calls decided stricter or
    looser than the baseline; quality from the scorers (normalized match with a reference,
    tool trajectory against the baseline, --scorer objects, the --judge). Scores already
    journaled are kept, so scoring again only adds what is new.

    --json prints one object per metric and scorer: metric, scorer, baseline, candidate, delta, scores.

    Example: agentjournal eval score --metrics quality,cost,latency,policy
    """
    from agentjournal.evals import METRICS, read_evaluation, score_evaluation_sync

    chosen = [name.strip() for name in metrics.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(METRICS))
    if unknown or not chosen:
        raise typer.BadParameter(
            f"{', '.join(unknown) or 'nothing'}: the metrics are {', '.join(METRICS)}", param_hint="--metrics"
        )
    quality = _scorers(scorer or [], judge, rubric)
    with open_evaluations(eval_db) as journal:
        evaluation_id = _evaluation_id(journal, evaluation, candidate)
        with progress_bar() as bar:
            report = score_evaluation_sync(
                journal,
                evaluation_id,
                metrics=chosen,  # type: ignore[arg-type]  # checked against METRICS above
                quality=quality,
                progress=_counted(bar, "scoring"),
            )
        record = read_evaluation(journal, evaluation_id)
    rows = _score_rows(record)
    if as_json:
        print_json(rows)
        return
    _print_scores(rows, f"evaluation {evaluation_id}: mean scores, recorded baseline against candidate")
    console.print(
        f"{report.recorded} score(s) journaled, {report.kept} already there.\n"
        f"next: agentjournal eval gate --evaluation {evaluation_id} --min-quality …",
        highlight=False,
        markup=False,
    )


def _print_scores(rows: list[dict[str, Any]], title: str) -> None:
    columns = (
        Col("metric", "key"),
        Col("scorer", "key"),
        Col("baseline", right=True),
        Col("candidate", right=True),
        Col("Δ", right=True),
        Col("scores", right=True, drop=1),
    )
    output.print_table(
        columns,
        [
            (
                row["metric"],
                row["scorer"],
                _figure(row["baseline"]),
                _figure(row["candidate"]),
                "—" if row["delta"] is None else f"{row['delta']:+.4g}",
                f"{row['scores']:,}",
            )
            for row in rows
        ],
        title=title,
    )


def _score_rows(record: EvaluationRecord) -> list[dict[str, Any]]:
    """Per metric and scorer: the mean of the baseline's and of the candidate's scores."""
    sums: dict[tuple[str, str], dict[str, list[float]]] = {}
    for score in record.scores:
        sums.setdefault((score.metric, score.scorer), {"baseline": [], "candidate": []})[score.side].append(score.value)
    rows = []
    for (metric, name), sides in sums.items():
        baseline = sum(sides["baseline"]) / len(sides["baseline"]) if sides["baseline"] else None
        candidate = sum(sides["candidate"]) / len(sides["candidate"]) if sides["candidate"] else None
        rows.append(
            {
                "metric": metric,
                "scorer": name,
                "baseline": baseline,
                "candidate": candidate,
                "delta": None if baseline is None or candidate is None else candidate - baseline,
                "scores": len(sides["baseline"]) + len(sides["candidate"]),
            }
        )
    return rows


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


# ----- gate ----------------------------------------------------------------------------------


@eval_app.command("gate")
def gate_command(
    *,
    evaluation: EvaluationOption = "latest",
    candidate: CandidateFilter = None,
    baseline: Annotated[
        str,
        typer.Option(help="recorded (the recorded runs), another evaluation's id, or a candidate's name"),
    ] = "recorded",
    min_quality: Annotated[float | None, typer.Option(help="The candidate's mean quality at least this")] = None,
    max_quality_drop: Annotated[
        float | None, typer.Option(help="Quality at most this below the baseline's (the replay delta)")
    ] = None,
    max_cost_delta: Annotated[
        float | None, typer.Option(help="Cost at most this much above the baseline's, relative (0.15: +15%)")
    ] = None,
    max_latency_delta: Annotated[
        float | None, typer.Option(help="Latency at most this much above the baseline's, relative")
    ] = None,
    max_policy_regressions: Annotated[
        int | None, typer.Option(help="At most this many calls decided differently from the baseline")
    ] = None,
    policy_direction: Annotated[
        str,
        typer.Option(
            help="Which policy moves count: stricter, looser or both", callback=one_of("stricter", "looser", "both")
        ),
    ] = "both",
    min_items: Annotated[int | None, typer.Option(help="At least this many items compared")] = None,
    confidence: Annotated[float, typer.Option(help="Of the bound compared under noise (with --repeat)")] = 0.95,
    markdown: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Also write the report as Markdown (a PR comment); - for stdout")
    ] = None,
    junit: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Also write JUnit XML (one case per check)")
    ] = None,
    html: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Also write an HTML report with per-item diffs")
    ] = None,
    eval_db: EvalDbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pass or fail the candidate against its baseline on the same items: exit 0 or 1.

    The report says which threshold failed, by how much, and on which items. With several
    replays per item (--repeat) each mean is compared through its confidence bound. The
    decision is journaled.

    --json prints one object: evaluation_id, candidate, baseline, passed, noise, checks (name,
    threshold, value, bound, passed, detail, items) and items (per item: baseline, candidate, spread).

    Example: agentjournal eval gate --min-quality 0.82 --max-cost-delta 0.15 --max-policy-regressions 0
    """
    from agentjournal.evals import Thresholds, gate

    thresholds = Thresholds(
        min_quality=min_quality,
        max_quality_drop=max_quality_drop,
        max_cost_delta=max_cost_delta,
        max_latency_delta=max_latency_delta,
        max_policy_regressions=max_policy_regressions,
        policy_direction=policy_direction,  # type: ignore[arg-type]  # checked by its callback
        min_items=min_items,
        confidence=confidence,
    )
    with open_evaluations(eval_db) as journal:
        evaluation_id = _evaluation_id(journal, evaluation, candidate)
        report = gate(journal, evaluation_id, thresholds, baseline=_baseline(journal, evaluation_id, baseline))
    for path, text in ((markdown, report.to_markdown), (junit, report.to_junit), (html, report.to_html)):
        if path is None:
            continue
        if str(path) == "-":
            typer.echo(text(), nl=False)
        else:
            path.write_text(text(), encoding="utf-8")
            errors.print(f"wrote {path}", highlight=False)
    if as_json:
        print_json([report.to_dict()])
    else:
        _print_gate(report)
    if not report.passed:
        raise typer.Exit(1)


def _baseline(journal: Journal, evaluation_id: str, baseline: str) -> str:
    """`recorded`, an evaluation id, or a candidate's name: its latest evaluation of the same dataset."""
    from agentjournal.evals import BASELINE, latest_evaluation, list_evaluations, read_evaluation

    if baseline == BASELINE or any(found.evaluation_id == baseline for found in list_evaluations(journal)):
        return baseline
    dataset = read_evaluation(journal, evaluation_id).started.dataset_version
    return latest_evaluation(journal, candidate=baseline, dataset_version=dataset)


def _print_gate(report: GateReport) -> None:
    """The checks as a table, then what each compared (the offending items under a failed one)."""
    columns = (
        Col("check", "key"),
        Col("threshold", right=True),
        Col("value", right=True),
        Col("bound", right=True, drop=1),
        Col("result", "key"),
    )
    output.print_table(
        columns,
        [
            (
                check.name,
                f"{check.threshold:.4g}",
                f"{check.value:.4g}",
                "—" if check.bound is None else f"{check.bound:.4g}",
                Text("pass", style="green") if check.passed else Text("FAIL", style="bold red"),
            )
            for check in report.checks
        ],
        title=f"eval gate {report.candidate} against {report.baseline}: {len(report.items)} items",
    )
    console.print(report.noise, highlight=False, markup=False)
    for check in report.checks:
        mark = "[green]pass[/]" if check.passed else "[bold red]FAIL[/]"
        console.print(f"{mark} {escape(check.name)}: {escape(check.detail)}", highlight=False)
        if check.passed:
            continue
        for offender in check.items[:10]:
            console.print(f"  {offender.item}: {offender.detail}", highlight=False, markup=False)
        if len(check.items) > 10:
            console.print(f"  … and {len(check.items) - 10} more (--markdown or --html lists them all)", markup=False)
    verdict = "[green]passed[/]" if report.passed else "[bold red]failed[/]"
    console.print(f"gate {verdict}: {escape(report.candidate)} ({escape(report.evaluation_id)})", highlight=False)


# ----- list and show -------------------------------------------------------------------------


@eval_app.command("list")
def list_command(eval_db: EvalDbOption = None, as_json: JsonOption = False) -> None:
    """Every evaluation in the evaluation journal, oldest first.

    --json prints one object per evaluation: evaluation_id, candidate, dataset_version, items, repeat, started_at.

    Example: agentjournal eval list
    """
    from agentjournal.evals import list_evaluations

    with open_evaluations(eval_db) as journal:
        found = list_evaluations(journal)
    if as_json:
        print_json(found)
        return
    output.print_table(
        (
            Col("evaluation", "key"),
            Col("candidate", "key", drop=1),
            Col("dataset", drop=3),
            Col("items", right=True),
            Col("repeat", right=True, drop=2),
            Col("started (UTC)", drop=4),
        ),
        [
            (
                s.evaluation_id,
                s.candidate,
                s.dataset_version.removeprefix("sha256:")[:12],
                f"{s.items:,}",
                str(s.repeat),
                s.started_at.strftime("%Y-%m-%d %H:%M"),
            )
            for s in found
        ],
        title=f"{len(found)} evaluation(s)",
        caption=None if found else "none yet: agentjournal eval replay --dataset … --candidate …",
    )


@eval_app.command("show")
def show_command(
    evaluation: Annotated[str, typer.Argument(help="The evaluation's id, or latest")] = "latest",
    eval_db: EvalDbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One evaluation: what was replayed, how the replays ended, the mean scores and the gate decisions.

    --json prints one object: evaluation_id, candidate, dataset_version, items, repeat, replays,
    statuses, diverged, scores (as `eval score --json`) and gates (passed, baseline, thresholds, checks).

    Example: agentjournal eval show latest
    """
    from agentjournal.evals import read_evaluation

    with open_evaluations(eval_db) as journal:
        record = read_evaluation(journal, _evaluation_id(journal, evaluation, None))
    statuses: dict[str, int] = {}
    for replay in record.replays.values():
        statuses[replay.status] = statuses.get(replay.status, 0) + 1
    diverged = sum(1 for replay in record.replays.values() if replay.divergence)
    started = record.started
    scores = _score_rows(record)
    summary = {
        "evaluation_id": record.evaluation_id,
        "candidate": started.candidate,
        "description": started.description,
        "dataset_version": started.dataset_version,
        "dataset_source": started.dataset_source,
        "items": len(record.items),
        "repeat": started.repeat,
        "replays": len(record.replays),
        "statuses": statuses,
        "diverged": diverged,
        "scores": scores,
        "gates": [gate.model_dump(mode="json") for gate in record.gates],
    }
    if as_json:
        print_json([summary])
        return
    expected = len(record.items) * started.repeat
    ended = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items())) or "none yet"
    console.print(
        f"[bold]{escape(record.evaluation_id)}[/]: candidate {escape(started.candidate)}"
        f"{f' ({escape(started.description)})' if started.description else ''}\n"
        f"dataset {started.dataset_version}\nfrom {escape(started.dataset_source)}: {len(record.items)} item(s) x "
        f"{started.repeat}\nreplays: {len(record.replays)} of {expected} ({ended}); {diverged} diverged"
        f"{'' if record.complete else ' — incomplete: run the same eval replay again to resume it'}",
        highlight=False,
        markup=True,
    )
    for gate in record.gates:
        failed = [check["name"] for check in gate.checks if not check.get("passed")]
        verdict = "passed" if gate.passed else f"failed ({', '.join(failed)})"
        console.print(f"gate against {gate.baseline}: {verdict}", highlight=False)
    if scores:
        _print_scores(scores, "mean scores")
