"""``run_bench``: every (task, method, seed) through the training runner, resumable, then the tables and the plot."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gelora.bench.checks import check_data
from gelora.bench.methods import MethodSpec
from gelora.bench.plans import PlanCache, PlanRecord
from gelora.bench.report import write_markdown, write_pareto
from gelora.bench.results import RESULTS_FILE, ResultsLog, failed_row, is_complete, result_row
from gelora.bench.settings import BENCH_FILE, BenchSettings, claim_bench_dir
from gelora.bench.tasks import BenchTask
from gelora.errors import GeloraError
from gelora.train.checkpoint import METRICS_FILE
from gelora.train.methods import PLAN_FILE  # the runner saves the plan it trained with here

TrainFn = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class Run:
    """One cell of the matrix and where its runner output goes: ``DIR/runs/<task>/<method folder>/seed<S>``."""

    bench_task: BenchTask
    spec: MethodSpec
    seed: int
    out: Path

    @property
    def task(self) -> str:
        return self.bench_task.label


def expand(settings: BenchSettings, out: Path) -> list[Run]:
    """The matrix, seed by seed: a bench stopped early still has every task and method for its first seeds."""
    specs = settings.method_specs()
    return [
        Run(task, spec, seed, out / "runs" / task.folder / spec.folder / f"seed{seed}")
        for seed in settings.seeds
        for task in settings.bench_tasks()
        for spec in specs
    ]


def read_finished(run_dir: Path) -> dict[str, Any] | None:
    """The run's metrics when it finished; a torn or partial ``metrics.json`` counts as not finished."""
    path = run_dir / METRICS_FILE
    if not path.exists():
        return None
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError:
        metrics = None
    if is_complete(metrics):
        return metrics
    path.unlink()  # let the runner resume from its last checkpoint and write it again
    return None


def adapter_params(run_dir: Path, plan: PlanRecord | None) -> int | None:
    """LoRA parameters of the run's plan: GeLoRA's, or the uniform plan the runner saved (None for full, AdaLoRA)."""
    if plan is not None:
        return plan.total_params
    saved = run_dir / PLAN_FILE
    return json.loads(saved.read_text()).get("total_params") if saved.exists() else None


def check_report_only(out: Path, overwrite: bool) -> None:
    """``--report-only`` reports an existing bench: it creates no folder and deletes no runs."""
    if overwrite:
        raise GeloraError("--report-only with --overwrite would delete the runs it reports; drop one of them")
    if not (out / BENCH_FILE).is_file():
        raise GeloraError(
            f"--report-only: {str(out)!r} holds no bench (no {BENCH_FILE}); give the --out of a bench that has run, "
            "or drop --report-only to start one"
        )


def train_config(settings: BenchSettings, run: Run, plan: PlanRecord | None):
    from gelora.train.methods import method_class

    uses_rank = method_class(run.spec.method).uses_rank
    return settings.run_config(
        run.bench_task,
        method=run.spec.method,
        out=str(run.out),
        plan=str(plan.path) if plan else None,
        rank=run.spec.rank(settings.budget_rank) if uses_rank else None,
        lr=run.spec.lr(settings.lr),
        seed=run.seed,
        resume=True,  # a new folder starts fresh; a half-finished one continues from its last checkpoint
    )


def default_train() -> TrainFn:
    from gelora.train.runner import train

    return train


def run_bench(
    settings: BenchSettings,
    out: str | Path,
    overwrite: bool = False,
    train: TrainFn | None = None,
    report_only: bool = False,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """Run (or resume) the benchmark in ``out``; return the rows of this matrix and the failures.

    ``train`` is the training runner (``gelora.train.runner.train``); tests pass a fake one.
    A failing run is recorded and reported, and the bench goes on with the next one; re-running retries it.
    ``report_only`` trains nothing: the tables are rewritten from the runs finished so far (e.g. of a stopped bench).
    """
    out = Path(out)
    if report_only:
        check_report_only(out, overwrite)
    settings.validate()
    if not report_only:  # a report reads finished runs only: it needs no data (e.g. on another machine)
        check_data(settings)
    claim_bench_dir(out, settings, overwrite)
    train = train or (None if report_only else default_train())
    plans = PlanCache(out, settings)
    results = ResultsLog(out / RESULTS_FILE)
    runs = expand(settings, out)
    failures: list[str] = []
    for i, run in enumerate(runs, 1):
        name = f"[{i}/{len(runs)}] {run.task} {run.spec.label} seed {run.seed}"
        try:
            metrics = read_finished(run.out)
            if metrics is None and report_only:
                continue
            plan = plans.plan_for(run.bench_task, run.spec) if run.spec.is_gelora else None
            fresh = metrics is None
            if fresh:
                log(f"{name}: training")
                metrics = train(train_config(settings, run, plan))
        except (GeloraError, RuntimeError, ValueError, OSError) as e:  # one broken run must not sink the bench
            failures.append(f"{run.task} {run.spec.label} seed {run.seed}: {type(e).__name__}: {e}")
            log(f"{name}: FAILED: {e}")
            results.record(failed_row(run.task, run.spec.label, run.seed, f"{type(e).__name__}: {e}"))
            continue
        row = result_row(
            run.task, run.spec.label, run.seed, metrics, plan.seconds if plan else 0.0, adapter_params(run.out, plan)
        )
        results.record(row)
        log(f"{name}: {row['metric']} {row['score']:.4f}" + ("" if fresh else " (done earlier, skipped)"))
        if run.spec == runs[-1].spec and i < len(runs):  # tables so far after each (seed, task): watchable
            write_markdown(out / "results.md", finished_rows(settings, results), settings, failures)
    rows = finished_rows(settings, results)
    write_markdown(out / "results.md", rows, settings, failures)
    write_pareto(out / "pareto.png", rows, list(settings.tasks))
    return {"rows": rows, "failures": failures}


def finished_rows(settings: BenchSettings, results: ResultsLog) -> list[dict[str, Any]]:
    return results.select(settings.tasks, [s.label for s in settings.method_specs()], settings.seeds)
