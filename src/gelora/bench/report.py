"""``results.md`` (tables per task, the mean across tasks) and ``pareto.png`` (score vs parameters).

The tables report; they pass no verdict. Whether GeLoRA meets its claims is ``benchmarks/verdicts.py``'s business.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from gelora.bench.results import Aggregate, Summary, across_tasks, aggregate
from gelora.bench.settings import BenchSettings
from gelora.io import atomic_write_text, save_figure


def _pm(s: Summary, digits: int = 4) -> str:
    if s.n == 0 or math.isnan(s.mean):
        return "–"
    if s.n == 1:  # one seed has no spread to report
        return f"{s.mean:.{digits}f}"
    return f"{s.mean:.{digits}f} ± {s.std:.{digits}f}"


def _params(n: float | None) -> str:
    return "–" if n is None else f"{n:,.0f}"


def _ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}×"


def task_metrics(rows: list[dict[str, Any]], task: str) -> tuple[str, str | None, bool]:
    """The task's main metric, its second score (or None) and whether larger is better, as its runs reported them."""
    row = next(r for r in rows if r["task"] == task)
    return row.get("metric", "score"), row.get("secondary_metric"), row.get("greater_is_better", True)


def task_table(task: str, cells: list[Aggregate], metric: str, second: str | None) -> list[str]:
    n = max(c.score.n for c in cells)
    lines = [
        f"### {task} ({metric}{', ' + second if second else ''}; n = {n} seed{'s' * (n != 1)})",
        "",
        f"| method | n | {metric} |" + (f" {second} |" if second else "")
        + " trainable params | adapter params (plan) | median step s | step vs LoRA | wall s (incl. profile) "
        "| profile + plan s |",
        "|---|---:|---:|" + ("---:|" if second else "") + "---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        lines.append(
            f"| {c.method} | {c.score.n} | {_pm(c.score)} |"
            + (f" {_pm(c.secondary)} |" if second else "")
            + f" {_params(c.trainable_params)} | {_params(c.adapter_params)} | {c.step_seconds.mean:.3f}"
            f" | {_ratio(c.step_vs_lora)} | {c.wall_seconds.mean:.1f} | {c.plan_seconds:.1f} |"
        )
    return lines + [""]


def overall_table(
    rows: list[dict[str, Any]], cells: list[Aggregate], tasks: list[str], scales: dict[str, float]
) -> list[str]:
    """Means over the tasks whose main metric grows with quality (a loss does not average with accuracies), each
    task's score divided by its ``scales`` entry (question answering's F1 in 0..100: 100) onto the 0..1 scale."""
    losses = [t for t in tasks if not task_metrics(rows, t)[2]]
    tasks = [t for t in tasks if t not in losses]
    if not tasks:
        return []
    cells = [c for c in cells if c.task in tasks]
    methods = list(dict.fromkeys(c.method for c in cells))
    rescaled = [f"{task_metrics(rows, t)[0]} of {t} / {scales[t]:g}" for t in tasks if scales.get(t, 1.0) != 1.0]
    lines = [
        f"### Mean across tasks ({', '.join(tasks)}; main metric of each"
        + (f"; on one 0-1 scale: {', '.join(rescaled)}" if rescaled else "")
        + (f"; without {', '.join(losses)}: a loss does not average with scores" if losses else "") + ")",
        "",
        "| method | mean score ± std over seeds | n seeds | trainable params (mean) | step vs LoRA (mean) "
        "| wall s, sum over tasks (incl. profile) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method in methods:
        mine = [c for c in cells if c.method == method]
        ratios = [c.step_vs_lora for c in mine if c.step_vs_lora is not None]
        complete = len(mine) == len(tasks)  # a method missing a task has no mean across tasks
        mean = across_tasks(rows, method, tasks, scales)
        lines.append(
            f"| {method} | {_pm(mean)} | {mean.n} "
            f"| {_params(statistics.fmean(c.trainable_params for c in mine))} "
            f"| {_ratio(statistics.fmean(ratios) if ratios and complete else None)} "
            f"| {f'{sum(c.wall_seconds.mean for c in mine):.1f}' if complete else '–'} |"
        )
    return lines + [""]


def settings_lines(settings: BenchSettings) -> list[str]:
    subset = lambda n: "all" if n is None else f"first {n}"  # noqa: E731
    return [
        f"- model: `{settings.model}`; tasks: {', '.join(settings.tasks)}; seeds: {', '.join(map(str, settings.seeds))}",
        f"- budget rank R = {settings.budget_rank}; epochs {settings.epochs}; batch size {settings.batch_size}; "
        f"max length {settings.max_length}; lr {settings.lr if settings.lr is not None else 'runner default'}",
        f"- train rows: {subset(settings.max_train_samples)}; eval rows: {subset(settings.max_eval_samples)}; "
        f"GeLoRA profiles on up to {settings.profile_samples} training texts",
        "- scores: final epoch on the evaluation split (no selection on it); std: sample std over seeds",
        "- trainable params: what the optimizer updates (classifier head included; AdaLoRA: its initial 1.5 R "
        "allocation, budget-matched at its final average rank R; GeoLoRA: U, S, V at its final ranks, which it "
        "reached from larger ones); adapter params (plan): LoRA matrices of the plan",
        "- wall s: the runner's wall time (data, model build incl. EVA's SVD pass, training, evaluation) "
        "plus, for GeLoRA, the profile + plan time of its task (charged in full to every seed)",
        "",
    ]


def write_markdown(path: Path, rows: list[dict[str, Any]], settings: BenchSettings, failures: list[str]) -> str:
    cells = aggregate(rows)
    tasks = [t for t in settings.tasks if any(c.task == t for c in cells)]
    lines = [f"## gelora bench: {settings.model}", "", *settings_lines(settings)]
    for task in tasks:
        metric, second, _ = task_metrics(rows, task)
        lines += task_table(task, [c for c in cells if c.task == task], metric, second)
    if tasks:
        lines += overall_table(rows, cells, tasks, {t.label: t.score_scale for t in settings.bench_tasks()})
    if failures:
        lines += ["### Failed runs", "", *(f"- {f}" for f in failures), ""]
    text = "\n".join(lines)
    atomic_write_text(path, text)
    return text


def write_pareto(path: Path, rows: list[dict[str, Any]], tasks: list[str]) -> Path | None:
    """Score vs trainable parameters, one panel per task, one point per method (error bars: std over seeds).

    Methods with equal budgets would hide each other, so each method's x is nudged by a few percent (log axis).
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # not pyplot: a notebook's backend and figures stay as they are

    cells = aggregate(rows)
    tasks = [t for t in tasks if any(c.task == t for c in cells)]
    if not tasks:
        return None
    methods = list(dict.fromkeys(c.method for c in cells))
    # 10 colours x 4 markers: every method of a large ablation matrix keeps its own look
    styles = {m: (colormaps["tab10"](i % 10), "osD^"[i // 10 % 4]) for i, m in enumerate(methods)}
    nudge = {m: 1 + 0.03 * (i - (len(methods) - 1) / 2) for i, m in enumerate(methods)}
    fig = Figure(figsize=(4.2 * len(tasks), 3.6))
    axes = fig.subplots(1, len(tasks), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for c in (c for c in cells if c.task == task):
            ax.errorbar(
                c.trainable_params * nudge[c.method], c.score.mean, yerr=c.score.std, fmt=styles[c.method][1], capsize=3,
                color=styles[c.method][0],
                label=c.method,
            )
        ax.set_xscale("log")  # its minor ticks are labelled only when the panel spans less than a decade
        ax.set_title(task)
        ax.set_xlabel("trainable parameters (log; nudged per method)")
        metric, _, greater = task_metrics(rows, task)
        ax.set_ylabel(metric + ("" if greater else " (lower is better)"))
        ax.grid(alpha=0.3)
    legend = {label: handle for ax in axes[0] for handle, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(list(legend.values()), list(legend), loc="upper center", ncol=min(len(methods), 5), bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout()
    save_figure(fig, path)
    return path
