"""GeLoRA's claims against LoRA and AdaLoRA, judged on a ``gelora bench`` folder: one verdict line per claim.

Usage: PYTHONPATH=src python benchmarks/verdicts.py BENCH_DIR [--out verdicts.md]

Reads ``BENCH_DIR/results.jsonl`` (finished runs only), aggregates it as ``results.md`` does
(``gelora.bench.results``) and prints the lines; ``--out`` also writes them to a file. The claims are checked on the
methods labelled ``gelora``, ``lora`` and ``adalora``, on the tasks both compared methods finished. A claim is judged
only when every compared cell (task, method) has at least two seeds: one seed has no spread, so a difference could
be noise ("not enough seeds (n = 1)"). The score claim also gives Welch's two-sided p for the gap: a large p means
the seeds' spread explains it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from scipy.stats import ttest_ind_from_stats

from gelora.bench.report import task_metrics
from gelora.bench.results import RESULTS_FILE, Aggregate, ResultsLog, Summary, across_tasks, aggregate
from gelora.bench.tasks import QA_TASKS
from gelora.errors import GeloraError
from gelora.io import atomic_write_text

TARGET, LORA, ADALORA = "gelora", "lora", "adalora"
STEP_TOLERANCE, WALL_RATIO = 0.05, 0.6
MIN_SEEDS = 2

Cells = dict[str, Aggregate]  # one method's cells by task


def load_rows(bench: Path) -> list[dict[str, Any]]:
    """The finished rows of a bench folder."""
    path = bench / RESULTS_FILE
    if not path.is_file():
        raise GeloraError(f"{str(bench)!r} has no {RESULTS_FILE}; give the --out folder of a `gelora bench` run")
    try:
        rows = ResultsLog(path).rows.values()
    except (json.JSONDecodeError, KeyError) as e:
        raise GeloraError(f"{str(path)!r} is not a bench results file ({e}); re-run the bench to rewrite it") from None
    return [r for r in rows if r["status"] == "ok"]


def _mark(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def _too_few(summaries: list[Summary]) -> str | None:
    """The reason not to judge, when a compared cell has fewer than ``MIN_SEEDS`` seeds."""
    n = min(s.n for s in summaries)
    return f"not enough seeds (n = {n})" if n < MIN_SEEDS else None


def _common(mine: Cells, other: Cells) -> list[str]:
    return [t for t in mine if t in other]


def _not_measured(claim: str, other: str) -> str:
    return f"{claim}: not measured ({TARGET} and {other} finished no task in common)"


def score_claim(rows: list[dict[str, Any]], gel: Cells, lora: Cells) -> str:
    """GeLoRA's mean main score over the common tasks (per seed, then over seeds) is at least LoRA's.

    Scores that grow with quality are averaged as the bench's own cross-task mean does; a loss (an SFT eval loss)
    does not average with accuracies, so it is judged alone, lower being better, when no other task is common.
    """
    tasks = _common(gel, lora)
    better = {t: task_metrics(rows, t)[2] for t in tasks}
    higher = any(better.values()) or not tasks
    if higher:
        tasks = [t for t in tasks if better[t]]
    claim = f"- mean {'score' if higher else 'eval loss'} across tasks {'≥' if higher else '≤'} LoRA's at equal " \
        "trainable params"
    if not tasks:
        return _not_measured(claim, LORA)
    # SQuAD's F1 is a percentage: onto the 0..1 scale of the other tasks' scores, as the bench's own mean does
    scales = {t: 100.0 for t in tasks if t.partition(":")[0] in QA_TASKS}
    g, lo = across_tasks(rows, TARGET, tasks, scales), across_tasks(rows, LORA, tasks, scales)
    scope = f"{claim} ({', '.join(tasks)})"
    if reason := _too_few([g, lo]):
        return f"{scope}: {reason}"
    # Welch's t-test on the per-seed task means: says whether the gap is larger than the seeds' spread
    p = ttest_ind_from_stats(g.mean, g.std, g.n, lo.mean, lo.std, lo.n, equal_var=False).pvalue
    noise = f"; Welch p = {p:.2f}" if math.isfinite(p) else ""
    return (
        f"{scope}: {g.mean:.4f} ± {g.std:.4f} vs {lo.mean:.4f} ± {lo.std:.4f} ({g.mean - lo.mean:+.4f}; "
        f"n = {g.n}, {lo.n} seeds{noise}) — {_mark(g.mean >= lo.mean if higher else g.mean <= lo.mean)}"
    )


def _per_task(claim: str, gel: Cells, other: Cells, baseline: str, field: str) -> tuple[list[str], str | None]:
    """The tasks both methods finished, and the line to give instead of a verdict (None: judge on them)."""
    tasks = _common(gel, other)
    if not tasks:
        return tasks, _not_measured(claim, baseline)
    reason = _too_few([getattr(c[t], field) for c in (gel, other) for t in tasks])
    return tasks, f"{claim}: {reason}" if reason else None


def step_claim(gel: Cells, lora: Cells) -> str:
    """GeLoRA's median step time, relative to LoRA's on the same task and averaged over tasks, is at most 1.05."""
    claim = f"- step time at most {STEP_TOLERANCE:.0%} above LoRA's"
    tasks, unjudged = _per_task(claim, gel, lora, LORA, "step_seconds")
    if unjudged:
        return unjudged
    ratio = statistics.fmean(gel[t].step_seconds.mean / lora[t].step_seconds.mean for t in tasks)
    # The claim is "no overhead": a faster step (noise, or fewer ranks) does not miss it.
    return f"{claim}: {ratio:.3f}× (mean over {', '.join(tasks)}) — {_mark(ratio <= 1 + STEP_TOLERANCE)}"


def wall_claim(gel: Cells, ada: Cells) -> str:
    """GeLoRA's wall time including profiling, summed over the common tasks, is at most 0.6 of AdaLoRA's."""
    claim = f"- profiling + training wall time ≤ {WALL_RATIO}× AdaLoRA's"
    tasks, unjudged = _per_task(claim, gel, ada, ADALORA, "wall_seconds")
    if unjudged:
        return unjudged
    g_wall = sum(gel[t].wall_seconds.mean for t in tasks)
    a_wall = sum(ada[t].wall_seconds.mean for t in tasks)
    return (
        f"{claim}: {g_wall:.1f} s vs {a_wall:.1f} s ({g_wall / a_wall:.2f}×, sum over {', '.join(tasks)} of the mean "
        f"per seed) — {_mark(g_wall <= WALL_RATIO * a_wall)}"
    )


def verdict_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The claims of GeLoRA against LoRA and AdaLoRA, each met / missed, not measured, or short of seeds."""
    cells = aggregate(rows)

    def by(method: str) -> Cells:
        return {c.task: c for c in cells if c.method == method}

    gel, lora, ada = by(TARGET), by(LORA), by(ADALORA)
    lines = ["### Targets", ""]
    if not gel:
        return lines + [f"- not measured: no finished `{TARGET}` runs", ""]
    return lines + [score_claim(rows, gel, lora), step_claim(gel, lora), wall_claim(gel, ada), ""]


def main(argv: list[str] | None = None) -> int:
    """Print (and with ``--out`` write) the verdicts; exit 2 with one line on bad input."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, help="a `gelora bench` --out folder")
    parser.add_argument("--out", type=Path, help="also write the verdicts to this file (markdown)")
    args = parser.parse_args(argv)
    try:
        text = "\n".join(verdict_lines(load_rows(args.bench)))
        if args.out:
            atomic_write_text(args.out, text)
    except (GeloraError, OSError) as e:
        print(f"verdicts: error: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
