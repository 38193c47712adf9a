"""What a benchmark is: ``BenchSettings`` (the matrix and the shared training settings) and its ``bench.json``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gelora.bench.methods import DEFAULT_METHODS, MethodSpec, parse_methods
from gelora.cli_args import option
from gelora.bench.tasks import BenchTask, parse_task
from gelora.errors import GeloraError, flag
from gelora.io import atomic_write_json
from gelora.outdir import OutputFolder

BENCH_FILE = "bench.json"
BENCH_FORMAT = "gelora.bench/1"
# What a bench writes into its folder; --overwrite removes exactly these.
OWNED = (BENCH_FILE, "runs", "plans", "results.jsonl", "results.md", "pareto.png")

# Defaults of the settings --quick changes (CI-sized smoke runs); explicit options still win.
DEFAULTS = {"seeds": (0, 1, 2), "epochs": 3, "max_length": 128, "max_train_samples": None,
            "max_eval_samples": None, "profile_samples": 512}
QUICK = {"seeds": (0,), "epochs": 1, "max_length": 32, "max_train_samples": 64, "max_eval_samples": 64,
         "profile_samples": 64}


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise GeloraError(f"--seeds must be comma-separated integers, e.g. 0,1,2 (got {text!r})") from None


def _default(name: str) -> str:
    """How ``--help`` shows a default that ``--quick`` changes, e.g. ``0,1,2 (--quick: 0)``."""

    def shown(value) -> str:
        return "all" if value is None else ",".join(map(str, value)) if isinstance(value, tuple) else str(value)

    return f"{shown(DEFAULTS[name])} (--quick: {shown(QUICK[name])})"


@dataclass
class BenchSettings:
    """Every (task, method, seed) of the matrix is one run of the training runner with these shared settings.

    ``profile_samples`` caps the training texts GeLoRA profiles on (a method spec's ``num_samples`` overrides it).
    Settings left None take their defaults, or the ``--quick`` ones.
    """

    model: str = option(help="Hub id, local model folder, or 'minilm'")
    tasks: tuple[str, ...] = option(("rte", "mrpc", "stsb", "cola", "sst2"), "comma-separated GLUE tasks, or "
                                    "KIND:SOURCE (sft:gsm8k, qa:squad_v2, classify:FILE)", metavar="T1,T2,...",
                                    parse_as=str)
    methods: tuple[str, ...] = option(DEFAULT_METHODS, "method specs NAME[:KEY=VALUE,...], see below",
                                      metavar="SPECS", parse_as=str)
    seeds: tuple[int, ...] | None = option(None, "comma-separated integers", default_text=_default("seeds"),
                                           metavar="S1,S2,...", parse_as=str)
    budget_rank: int = option(8, "R: the LoRA rank every method's budget matches")
    epochs: int | None = option(None, "passes over the training rows", default_text=_default("epochs"))
    lr: float | None = option(None, "learning rate", default_text="the runner's per method (5e-4 adapters, 2e-5 full)")
    batch_size: int = option(32, "rows per step")
    eval_batch_size: int | None = option(None, "rows per evaluation batch", default_text="--batch-size")
    eval_generate: int = option(0, "sft tasks: greedy answers to the first N evaluation prompts, scored by "
                                "final-number exact match (GSM8K)")
    max_length: int | None = option(None, "tokens per row", default_text=_default("max_length"))
    max_train_samples: int | None = option(None, "first N training rows", default_text=_default("max_train_samples"))
    max_eval_samples: int | None = option(None, "first N evaluation rows", default_text=_default("max_eval_samples"))
    profile_samples: int | None = option(None, "training texts GeLoRA profiles on",
                                         default_text=_default("profile_samples"))
    data_dir: str | None = option(None, "local GLUE folder", default_text="$GELORA_DATA_DIR, else the Hub")
    text_columns: list[str] | None = option(None, "classify tasks: the text column(s)", default_text="text")
    label_column: str = option("label", "classify tasks: the label column")
    prompt_column: str | None = option(None, "sft tasks: the prompt column (with --completion-column; sft:gsm8k "
                                       "keeps question / answer)", default_text="'messages', else 'prompt'")
    completion_column: str | None = option(None, "sft tasks: the completion column (the loss covers it)",
                                           default_text="'completion'")
    quick: bool = option(False, "smoke run: 64 train/64 eval rows, length 32, 1 epoch, seed 0")

    def __post_init__(self) -> None:
        if isinstance(self.tasks, str):
            self.tasks = tuple(t.strip() for t in self.tasks.split(",") if t.strip())
        if isinstance(self.seeds, str):
            self.seeds = _int_tuple(self.seeds)
        if isinstance(self.methods, str):
            self.methods = tuple(spec.label for spec in parse_methods(self.methods))
        defaults = QUICK if self.quick else DEFAULTS
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        self.tasks = tuple(bench_task.label for bench_task in self.bench_tasks())
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
                raise GeloraError(f"{flag(name)} must be at least 1 (got {getattr(self, name)})")
        if self.eval_generate < 0:
            raise GeloraError(f"--eval-generate must be >= 0 (got {self.eval_generate})")
        sft_options = [name for name in ("eval_generate", "prompt_column", "completion_column") if getattr(self, name)]
        sft_tasks = [t for t in self.bench_tasks() if t.task == "sft"]
        if sft_options and not sft_tasks:
            flags = ", ".join(map(flag, sft_options))
            verb, them = ("is", "it") if len(sft_options) == 1 else ("are", "them")
            raise GeloraError(f"{flags} {verb} for sft tasks, and --tasks has none; drop {them} or add one, e.g. "
                              "sft:gsm8k or sft:FILE")
        if (self.prompt_column or self.completion_column) and all(t.preset for t in sft_tasks):
            own = "has its" if len(sft_tasks) == 1 else "have their"
            raise GeloraError(f"--prompt-column/--completion-column name the columns of sft:FILE tasks, and "
                              f"{', '.join(t.label for t in sft_tasks)} {own} own; drop them")
        for name in ("eval_batch_size", "max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise GeloraError(f"{flag(name)} must be at least 1 (got {value})")
        if self.lr is not None and self.lr <= 0:
            raise GeloraError(f"--lr must be positive (got {self.lr})")
        self.method_specs()

    def bench_tasks(self) -> list[BenchTask]:
        """The tasks of the matrix, as the runner runs them (``gelora.bench.tasks``)."""
        import os

        from gelora.data import DATA_DIR_ENV

        # Not checked here: a report reads finished runs and needs no data (check_data checks before training).
        folder = self.data_dir or os.environ.get(DATA_DIR_ENV)
        glue = Path(folder).expanduser() if folder else None
        columns = {
            "classify": {"text_columns": self.text_columns or ["text"], "label_column": self.label_column},
            "sft": {"prompt_column": self.prompt_column, "completion_column": self.completion_column},
        }
        return [parse_task(t, glue, columns) for t in self.tasks]

    def run_config(self, bench_task: BenchTask, **settings: Any):
        """The runner's ``TrainConfig`` for ``bench_task`` with the bench's shared settings and ``settings``."""
        from gelora.train.config import TrainConfig

        data = bench_task.data
        if bench_task.task == "sft":
            data = dataclasses.replace(data, eval_generate=self.eval_generate)
        return TrainConfig(
            model=self.model,
            task=bench_task.task,
            data_options=data,
            epochs=self.epochs,
            batch_size=self.batch_size,
            eval_batch_size=self.eval_batch_size,
            max_length=self.max_length,
            data_dir=self.data_dir if bench_task.task.startswith("glue/") else None,
            max_train_samples=self.max_train_samples,
            max_eval_samples=self.max_eval_samples,
            progress=False,
            **settings,
        )

    def method_specs(self) -> list[MethodSpec]:
        return parse_methods(";".join(self.methods))

    def identity(self) -> dict[str, Any]:
        """The settings every run shares: a bench folder only ever holds runs made with the same ones.

        Tasks, methods and seeds are left out, so a later call may extend the matrix of an existing bench.
        """
        d = dataclasses.asdict(self)
        for key in ("tasks", "methods", "seeds", "data_dir", "quick", "eval_batch_size"):
            d.pop(key)
        return canonical_identity(d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


BENCH_FOLDER = OutputFolder(marker=BENCH_FILE, owns=OWNED, kind="bench")


def canonical_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """``identity`` with defaults spelled one way: ``--text-columns text`` is what leaving it out means, and a local
    model folder is its absolute path (as its runs record it; an older bench typed it relative)."""
    from gelora.models import stored_model_name

    if identity.get("text_columns") == ["text"]:
        identity = {**identity, "text_columns": None}
    if "model" in identity:
        identity = {**identity, "model": stored_model_name(identity["model"])}
    return identity


def claim_bench_dir(out: Path, settings: BenchSettings, overwrite: bool) -> None:
    """Make ``out`` this bench's folder: a new one, one with the same settings (resume), or replaced (``overwrite``)."""
    BENCH_FOLDER.claim(
        out, settings.identity(), resume=True, overwrite=overwrite, read_identity=lambda saved: canonical_identity(saved.get("settings", {}))
    )
    if overwrite and out.exists():
        BENCH_FOLDER.clear(out)
    atomic_write_json(out / BENCH_FILE, {"format": BENCH_FORMAT, "settings": settings.identity(), "last": settings.to_dict()})
