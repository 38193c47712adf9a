"""Figures for profiles and plans, saved atomically.

Built on ``matplotlib.figure.Figure`` rather than ``pyplot``: no global figure registry and no backend switch, so
plotting from a notebook leaves its backend and open figures alone.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from gelora.io import save_figure

if TYPE_CHECKING:
    from gelora.plan import RankPlan
    from gelora.profile import Profile


def _draw_profile(ax, profile: Profile, label: str | None = None) -> None:
    """ID vs boundary with the bootstrap band; undefined boundaries marked with an x on the axis."""
    defined = [b for b in profile.boundaries if b.id is not None]
    x = [b.index for b in defined]
    line = ax.plot(x, [b.id for b in defined], "o-", label=label)[0]
    with_ci = [b for b in defined if b.ci_low is not None]
    if with_ci:
        ax.fill_between(
            [b.index for b in with_ci], [b.ci_low for b in with_ci], [b.ci_high for b in with_ci],
            color=line.get_color(), alpha=0.2, linewidth=0,
        )
    undefined = [b.index for b in profile.boundaries if b.id is None]
    if undefined:
        ax.plot(undefined, [0] * len(undefined), "x", color=line.get_color(), clip_on=False)
    ax.set_xticks(range(len(profile.boundaries)))
    ax.set_xlabel("layer boundary (0 = embeddings)")
    ax.set_ylabel(f"intrinsic dimension ({profile.estimator})")
    ax.grid(alpha=0.3)


def _title(profile: Profile) -> str:
    source = profile.data.get("task") or profile.data.get("file") or "data"
    return f"{profile.model} on {source}, {profile.pooling} pooling, {profile.n_points} points"


def plot_profile(profile: Profile, path: str | os.PathLike) -> None:
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    _draw_profile(ax, profile)
    ax.set_title(_title(profile), fontsize=9)
    save_figure(fig, path)


def plot_profiles(profiles: list[Profile], labels: list[str], path: str | os.PathLike) -> None:
    """Several profiles overlaid (e.g. the same model on two tasks: the paper's Fig. 3)."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for profile, label in zip(profiles, labels):
        _draw_profile(ax, profile, label)
    ax.set_xticks(range(max(len(p.boundaries) for p in profiles)))
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_plan(plan: RankPlan, profile: Profile, path: str | os.PathLike) -> None:
    """The ID profile on top, the ranks per block (drawn between their two boundaries) below."""
    fig = Figure(figsize=(6, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    _draw_profile(top, profile)
    top.set_title(_title(profile), fontsize=9)
    centers = [b.index + 0.5 for b in plan.blocks]
    bottom.bar(centers, plan.ranks, width=0.6, color="tab:gray", label=f"{plan.rule} ranks")
    for (name, ranks), color in zip(plan.ci_ranks.items(), ("tab:red", "tab:green")):
        bottom.plot(centers, ranks, "_", color=color, markersize=14, mew=2, label=f"{name} CI end")
    bottom.set_ylabel("LoRA rank")
    bottom.set_xlabel("layer boundary (block i spans i to i + 1)")
    bottom.legend(fontsize=8)
    bottom.grid(alpha=0.3, axis="y")
    save_figure(fig, path)


def plot_rank_history(history: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """GeoLoRA's rank of every adapted module over the training steps (one thin line each), and their total."""
    fig = Figure(figsize=(7, 6))
    per_module, total = fig.subplots(2, 1, sharex=True)
    steps = [h["step"] for h in history]
    for name in history[0]["ranks"]:
        per_module.plot(steps, [h["ranks"][name] for h in history], drawstyle="steps-post", lw=0.8, alpha=0.6)
    per_module.set_ylabel("rank per module")
    per_module.set_title(title or f"GeoLoRA ranks of {len(history[0]['ranks'])} modules", fontsize=9)
    per_module.grid(alpha=0.3)
    total.plot(steps, [h["total_rank"] for h in history], drawstyle="steps-post", color="black")
    total.set_ylabel("total rank")
    total.set_xlabel("optimizer step")
    total.grid(alpha=0.3)
    save_figure(fig, path)
