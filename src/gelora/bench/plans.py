"""GeLoRA plans for the bench: one profile per (task, profile options), shared by every seed and GeLoRA variant.

Layout: ``DIR/plans/<task>/profile-<key>.json`` (the ID profile), ``DIR/plans/<task>/<method folder>.plan.json``
and beside each a ``.timing.json`` with the seconds it took, so a resumed bench still reports them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gelora.bench.methods import MethodSpec
from gelora.bench.settings import BenchSettings
from gelora.bench.tasks import BenchTask
from gelora.io import atomic_write_json
from gelora.models import stored_model_name
from gelora.options import ProfileOptions


@dataclass(frozen=True)
class PlanRecord:
    """A plan on disk and what it cost: ``profile_seconds`` (forward passes + ID estimates), ``plan_seconds``."""

    path: Path
    profile_seconds: float
    plan_seconds: float
    total_params: int

    @property
    def seconds(self) -> float:
        return self.profile_seconds + self.plan_seconds


def _key(options: ProfileOptions) -> str:
    """The profile's file key: the options a bench varies (pooling, estimator, num_samples)."""
    return f"pooling={options.pooling}-estimator={options.estimator}-num_samples={options.num_samples}"


class PlanCache:
    """Profiles and plans of one bench, computed on first use and read back from disk afterwards."""

    def __init__(self, out: Path, settings: BenchSettings):
        self.root = out / "plans"
        self.settings = settings
        self._models: dict[str, Any] = {}
        self._tasks: dict[str, Any] = {}

    def plan_for(self, task: BenchTask, spec: MethodSpec) -> PlanRecord:
        """The plan of ``spec`` on ``task`` (profiling the model on the task's training texts if not done yet).

        The runner's own path (``timed_profile``, ``plan_from_profile``) on the runner's own model and texts: a bench
        plan is the plan ``gelora train --seed 0`` would make, profiled once per task and profile options and
        shared by every seed (so the seeds differ in training only, not in their ranks).
        """
        folder = self.root / task.folder
        path = folder / f"{spec.folder}.plan.json"
        timing = _timing_path(path)
        if path.exists() and timing.exists():
            return PlanRecord(path, **json.loads(timing.read_text()))
        from gelora.train.methods import plan_from_profile

        profile, profile_seconds = self._profile(task, spec)
        plan, plan_seconds = plan_from_profile(profile, self._model(task), spec.plan_options(self.settings.budget_rank))
        plan.to_json(path)
        record = {"profile_seconds": profile_seconds, "plan_seconds": plan_seconds, "total_params": plan.total_params}
        atomic_write_json(timing, record)
        return PlanRecord(path, **record)

    def _profile(self, task: BenchTask, spec: MethodSpec):
        from gelora.profile import Profile
        from gelora.train.methods import timed_profile

        options = spec.profile_options(self.settings.profile_samples)
        path = self.root / task.folder / f"profile-{_key(options)}.json"
        timing = _timing_path(path)
        if path.exists() and timing.exists():
            return Profile.from_json(path), json.loads(timing.read_text())["seconds"]
        train_task, data, tokenizer = self._task(task)
        # Seed 0 for every seed: the profile belongs to (task, model), and the bench charges its time to each run.
        profile, seconds = timed_profile(
            self._model(task),
            tokenizer,
            data.profile_texts,
            options,
            seed=0,
            max_length=self.settings.max_length,
            model_name=stored_model_name(self.settings.model),
            data={"task": train_task.name, "rows": len(data.profile_texts)},
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        profile.to_json(path)
        atomic_write_json(timing, {"seconds": seconds})
        return profile, seconds

    def _task(self, task: BenchTask):
        """The runner's task, its training rows (the first ``max_train_samples``, as a run takes them), tokenizer."""
        if task.label not in self._tasks:
            from gelora.models import load_tokenizer
            from gelora.train.tasks import make_task

            train_task = make_task(self.settings.run_config(task, method="lora", out=""))
            tokenizer = load_tokenizer(self.settings.model)
            self._tasks[task.label] = (train_task, train_task.load(tokenizer), tokenizer)
        return self._tasks[task.label]

    def _model(self, task: BenchTask):
        """The task's model as the runner builds it, so module names in the plan match the trained model."""
        if task.label not in self._models:
            self._models[task.label] = self._task(task)[0].build_model().eval()
        return self._models[task.label]


def _timing_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".json") + ".timing.json")
