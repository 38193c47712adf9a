"""Benchmark rows (one per run, ``DIR/results.jsonl``) and their aggregates (per task and method, over seeds)."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gelora.io import atomic_write_text

RESULTS_FILE = "results.jsonl"
REQUIRED_METRICS_KEYS = ("final", "history", "trainable_params", "wall_seconds", "median_step_seconds")


def is_complete(metrics: dict[str, Any] | None) -> bool:
    """Whether a run's ``metrics.json`` content is a finished run's (all the bench reads is there)."""
    return bool(metrics) and all(k in metrics for k in REQUIRED_METRICS_KEYS) and bool(metrics["history"])


def result_row(
    task: str, label: str, seed: int, metrics: dict[str, Any], plan_seconds: float = 0.0, plan_params: int | None = None
) -> dict[str, Any]:
    """One ``results.jsonl`` line: the scores of the final epoch (no model selection on the evaluation split).

    ``plan_seconds`` is GeLoRA's profiling + planning time; it is charged in full to every seed's wall time, since
    a user fine-tuning once pays it once.
    """
    final = metrics["final"]
    metric, secondary = metric_names(metrics)
    return {
        "task": task,
        "method": label,
        "runner_method": metrics.get("method"),
        "seed": seed,
        "status": "ok",
        "metric": metric,
        "score": final[metric],
        "secondary_metric": secondary,
        "secondary": final[secondary] if secondary else None,
        "best_score": metrics.get("best", final)[metric],
        "greater_is_better": metrics.get("greater_is_better", True),
        "trainable_params": metrics["trainable_params"],
        "adapter_params": plan_params,
        "median_step_seconds": metrics["median_step_seconds"],
        "train_wall_seconds": metrics["wall_seconds"],
        "plan_seconds": plan_seconds,
        "wall_seconds": metrics["wall_seconds"] + plan_seconds,
        "steps": metrics.get("steps"),
        "train_samples": metrics.get("train_samples"),
        "eval_samples": metrics.get("eval_samples"),
        "ranks": metrics.get("ranks"),
    }


# Scores that restate another one (perplexity = exp(loss)): never a table's second score.
DERIVED = ("perplexity",)


def metric_names(metrics: dict[str, Any]) -> tuple[str, str | None]:
    """The run's selected metric and the next score its task reports (e.g. accuracy and F1, F1 and EM, loss and
    exact match), if any."""
    metric = metrics["metric"]
    others = [k for k in metrics["final"] if k not in ("epoch", "step", "train_loss", metric, *DERIVED)]
    return metric, (others[0] if others else None)


def failed_row(task: str, label: str, seed: int, error: str) -> dict[str, Any]:
    return {"task": task, "method": label, "seed": seed, "status": "failed", "error": error}


class ResultsLog:
    """``results.jsonl`` keyed by (task, method, seed): a re-run replaces its line; the file is rewritten atomically."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[tuple[str, str, int], dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[(row["task"], row["method"], row["seed"])] = row

    def record(self, row: dict[str, Any]) -> None:
        self.rows[(row["task"], row["method"], row["seed"])] = row
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.rows.values()))

    def select(self, tasks: Iterable[str], labels: Iterable[str], seeds: Iterable[int]) -> list[dict[str, Any]]:
        """The finished rows of the given matrix, in matrix order."""
        keys = [(t, m, s) for t in tasks for m in labels for s in seeds]
        return [self.rows[k] for k in keys if k in self.rows and self.rows[k]["status"] == "ok"]


@dataclass
class Summary:
    """Mean and sample std (0 for a single value) over ``n`` values."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        values = [v for v in values if v is not None]
        if not values:
            return cls(math.nan, math.nan, 0)
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))


@dataclass
class Aggregate:
    """One (task, method) cell of the results table."""

    task: str
    method: str
    score: Summary
    secondary: Summary
    trainable_params: float
    adapter_params: float | None
    step_seconds: Summary
    wall_seconds: Summary
    plan_seconds: float
    step_vs_lora: float | None = None


def aggregate(rows: list[dict[str, Any]], baseline: str = "lora") -> list[Aggregate]:
    """Per (task, method) summaries over seeds, in first-seen order; step time relative to ``baseline`` on the task."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["method"]), []).append(row)
    cells = []
    for (task, method), group in groups.items():
        adapter = [r["adapter_params"] for r in group if r.get("adapter_params") is not None]
        cells.append(
            Aggregate(
                task=task,
                method=method,
                score=Summary.of([r["score"] for r in group]),
                secondary=Summary.of([r["secondary"] for r in group]),
                trainable_params=statistics.fmean(r["trainable_params"] for r in group),
                adapter_params=statistics.fmean(adapter) if adapter else None,
                step_seconds=Summary.of([r["median_step_seconds"] for r in group]),
                wall_seconds=Summary.of([r["wall_seconds"] for r in group]),
                plan_seconds=statistics.fmean(r["plan_seconds"] for r in group),
            )
        )
    base = {c.task: c.step_seconds.mean for c in cells if c.method == baseline}
    for cell in cells:
        if base.get(cell.task):
            cell.step_vs_lora = cell.step_seconds.mean / base[cell.task]
    return cells


def across_tasks(
    rows: list[dict[str, Any]], method: str, tasks: list[str], scales: Mapping[str, float] | None = None
) -> Summary:
    """Mean over tasks of the main score; std over seeds of the per-seed task average (seeds run on every task).

    ``scales`` divides a task's scores onto one scale with the others (SQuAD's F1 in 0..100: 100); default 1.
    """
    scales = scales or {}
    by_seed: dict[int, dict[str, float]] = {}
    for row in rows:
        if row["method"] == method:
            by_seed.setdefault(row["seed"], {})[row["task"]] = row["score"] / scales.get(row["task"], 1.0)
    complete = [scores for scores in by_seed.values() if all(t in scores for t in tasks)]
    if not complete:
        return Summary(math.nan, math.nan, 0)
    return Summary.of([statistics.fmean(scores[t] for t in tasks) for scores in complete])
