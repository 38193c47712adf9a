"""GeLoRA plans for the bench: one profile per (task, profile options), shared by every seed and GeLoRA variant.

Layout: ``DIR/plans/<task>/profile-<key>.json`` (the ID profile), ``DIR/plans/<task>/<method folder>.plan.json``
and beside each a ``.timing.json`` with the seconds it took, so a resumed bench still reports them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gelora.bench.methods import MethodSpec
from gelora.bench.settings import BenchSettings
from gelora.io import atomic_write_json


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


def _key(options: dict[str, Any]) -> str:
    return "-".join(f"{k}={v}" for k, v in options.items())


class PlanCache:
    """Profiles and plans of one bench, computed on first use and read back from disk afterwards."""

    def __init__(self, out: Path, settings: BenchSettings):
        self.root = out / "plans"
        self.settings = settings
        self._models: dict[str, Any] = {}

    def plan_for(self, task: str, spec: MethodSpec) -> PlanRecord:
        """The plan of ``spec`` on ``task`` (profiling the model on the task's training texts if not done yet)."""
        folder = self.root / task
        path = folder / f"{spec.folder}.plan.json"
        timing = _timing_path(path)
        if path.exists() and timing.exists():
            return PlanRecord(path, **json.loads(timing.read_text()))
        from gelora.plan import plan_ranks

        profile, profile_seconds = self._profile(task, spec)
        options = spec.plan_options(self.settings.budget_rank)
        start = time.perf_counter()
        plan = plan_ranks(
            profile,
            self._model(task),
            rule=options["rule"],
            offset=options["offset"],
            min_rank=options["min_rank"],
            budget_rank=options["budget_rank"],
        )
        plan_seconds = time.perf_counter() - start
        plan.to_json(path)
        record = {"profile_seconds": profile_seconds, "plan_seconds": plan_seconds, "total_params": plan.total_params}
        atomic_write_json(timing, record)
        return PlanRecord(path, **record)

    def _profile(self, task: str, spec: MethodSpec):
        from gelora.profile import Profile, profile_model

        options = spec.profile_options(self.settings.profile_samples)
        path = self.root / task / f"profile-{_key(options)}.json"
        timing = _timing_path(path)
        if path.exists() and timing.exists():
            return Profile.from_json(path), json.loads(timing.read_text())["seconds"]
        from gelora.models import load_tokenizer

        texts = self._texts(task)
        model = self._model(task)
        start = time.perf_counter()
        # Seed 0 for every seed: the profile belongs to (task, model), and the bench charges its time to each run.
        profile = profile_model(
            model,
            load_tokenizer(self.settings.model),
            texts,
            pooling=options["pooling"],
            estimator=options["estimator"],
            bootstrap=0,
            seed=0,
            num_samples=options["num_samples"],
            max_length=self.settings.max_length,
            progress=False,
            model_name=self.settings.model,
            data={"task": task, "rows": len(texts)},
        )
        seconds = time.perf_counter() - start
        path.parent.mkdir(parents=True, exist_ok=True)
        profile.to_json(path)
        atomic_write_json(timing, {"seconds": seconds})
        return profile, seconds

    def _texts(self, task: str) -> list[tuple[str, ...]]:
        """The training texts the runs train on: the first ``max_train_samples`` rows, as the runner takes them."""
        from gelora.data import load_task, task_spec, text_pairs

        train = load_task(task, self.settings.data_dir)["train"]
        if self.settings.max_train_samples is not None:
            train = train.select(range(min(self.settings.max_train_samples, len(train))))
        return text_pairs(train, task_spec(task).text_columns)

    def _model(self, task: str):
        """The task's classifier, as the runner builds it, so module names in the plan match the trained model."""
        if task not in self._models:
            from gelora.data import task_spec
            from gelora.models import load_classifier

            self._models[task] = load_classifier(self.settings.model, task_spec(task).num_labels).eval()
        return self._models[task]


def _timing_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".json") + ".timing.json")
