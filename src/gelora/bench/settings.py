"""What a benchmark is: ``BenchSettings`` (the matrix and the shared training settings) and its ``bench.json``."""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gelora.bench.methods import MethodSpec, parse_methods
from gelora.data import task_spec
from gelora.errors import GeloraError
from gelora.io import atomic_write_json

BENCH_FILE = "bench.json"
BENCH_FORMAT = "gelora.bench/1"
# What a bench writes into its folder; --overwrite removes exactly these.
OWNED = (BENCH_FILE, "runs", "plans", "results.jsonl", "results.md", "pareto.png")

# --quick: CI-sized smoke runs (explicit flags still win).
QUICK = {
    "max_train_samples": 64,
    "max_eval_samples": 64,
    "max_length": 32,
    "epochs": 1,
    "seeds": (0,),
    "profile_samples": 64,
}


@dataclass
class BenchSettings:
    """Every (task, method, seed) of the matrix is one run of the training runner with these shared settings.

    ``profile_samples`` caps the training texts GeLoRA profiles on (a method spec's ``num_samples`` overrides it).
    """

    model: str
    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    budget_rank: int = 8
    epochs: int = 3
    lr: float | None = None
    batch_size: int = 32
    max_length: int = 128
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    profile_samples: int = 512
    data_dir: str | None = None
    quick: bool = False

    def __post_init__(self) -> None:
        self.tasks = tuple(task_spec(t).name for t in self.tasks)
        self.methods = tuple(self.methods)
        self.seeds = tuple(self.seeds)

    def validate(self) -> None:
        """Raise ``GeloraError`` for settings that cannot work, before any run starts."""
        if not self.tasks:
            raise GeloraError("--tasks is empty; give e.g. rte,mrpc,stsb")
        if len(set(self.tasks)) != len(self.tasks):
            raise GeloraError(f"--tasks lists a task twice ({', '.join(self.tasks)}); give each once")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise GeloraError(f"--seeds must be distinct integers, e.g. 0,1,2 (got {self.seeds})")
        if self.budget_rank < 1:
            raise GeloraError(f"--budget-rank must be at least 1 (got {self.budget_rank}); rank 0 trains nothing")
        for name in ("epochs", "batch_size", "max_length", "profile_samples"):
            if getattr(self, name) < 1:
                raise GeloraError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise GeloraError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
        if self.lr is not None and self.lr <= 0:
            raise GeloraError(f"--lr must be positive (got {self.lr})")
        self.method_specs()

    def method_specs(self) -> list[MethodSpec]:
        return parse_methods(";".join(self.methods))

    def identity(self) -> dict[str, Any]:
        """The settings every run shares: a bench folder only ever holds runs made with the same ones.

        Tasks, methods and seeds are left out, so a later call may extend the matrix of an existing bench.
        """
        d = dataclasses.asdict(self)
        for key in ("tasks", "methods", "seeds", "data_dir", "quick"):
            d.pop(key)
        return d

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def claim_bench_dir(out: Path, settings: BenchSettings, overwrite: bool) -> None:
    """Make ``out`` this bench's folder: a new one, one with the same settings (resume), or replaced (``overwrite``)."""
    if out.exists() and not out.is_dir():
        raise GeloraError(f"--out {str(out)!r} is a file; give a folder")
    bench_file = out / BENCH_FILE
    if bench_file.exists():
        old = json.loads(bench_file.read_text()).get("settings", {})
        new = settings.identity()
        differ = [k for k in new if old.get(k) != new[k]]
        if differ and not overwrite:
            changes = ", ".join(f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in differ)
            raise GeloraError(
                f"--out {str(out)!r} holds a bench with different settings ({changes}); "
                "use the same settings to resume it, --overwrite to replace it, or another folder"
            )
    elif out.exists() and any(out.iterdir()) and not overwrite:
        raise GeloraError(f"--out {str(out)!r} holds files but no {BENCH_FILE}; choose an empty or new folder")
    if overwrite:
        for name in OWNED:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    atomic_write_json(bench_file, {"format": BENCH_FORMAT, "settings": settings.identity(), "last": settings.to_dict()})
