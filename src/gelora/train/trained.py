"""Use a finished training run: metrics on new data (``evaluate``) and outputs for unlabelled rows (``predict``).

The model is reopened the ecosystem's way, ``PeftModel.from_pretrained(base, RUN_DIR/adapter)`` (or, for
``--method full``, the saved ``RUN_DIR/model``), and the task is rebuilt from the run's ``run.json`` with what
training learned from its data (class names, SQuAD version) restored from ``metrics.json`` (``Task.restore``), so
new data is read exactly as the run read its own.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gelora.cli_args import option
from gelora.errors import GeloraError, flag
from gelora.train.checkpoint import METRICS_FILE, RUN_FILE
from gelora.train.config import TrainConfig

ADAPTER_CONFIG = "adapter_config.json"


@dataclass(kw_only=True)
class UseOptions:
    """What ``gelora evaluate`` and ``gelora predict`` share."""

    run_dir: str = option(help="the --out folder of a finished 'gelora train' run", positional=True, metavar="RUN_DIR")
    data: str = option(help="rows to use: a .jsonl/.json/.csv/.parquet file in the run's data schema", metavar="FILE")
    batch_size: int | None = option(None, "rows per batch", default_text="the run's --eval-batch-size, else its --batch-size")
    device: str | None = option(None, "torch device: cpu, cuda or cuda:N", default_text="cuda when available, else cpu")

    def check(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise GeloraError(f"--batch-size must be at least 1 (got {self.batch_size})")
        from gelora.data import FILE_KINDS

        folder = Path(self.data).expanduser()
        if folder.is_dir():  # which split a user means is a guess (read as data, a folder gives its train split)
            files = sorted(p.name for p in folder.iterdir() if p.suffix in FILE_KINDS)
            raise GeloraError(f"--data {self.data!r} is a folder (with {', '.join(files) or 'no data files'}); "
                              "give one data file, e.g. its test or validation file")


@dataclass(kw_only=True)
class EvaluateOptions(UseOptions):
    json: bool = option(False, "print the metrics as JSON")
    eval_generate: int | None = option(None, "sft runs: greedy answers to the first N rows (exact match when the "
                                             "references end '#### <number>'; 0: the loss only, much faster)",
                                       default_text="the run's --eval-generate")

    def check(self) -> None:
        super().check()
        if self.eval_generate is not None and self.eval_generate < 0:
            raise GeloraError(f"--eval-generate must be >= 0 (got {self.eval_generate})")


@dataclass(kw_only=True)
class PredictOptions(UseOptions):
    out: str = option(help="predictions file to write (.jsonl, one row per input row, in input order)", metavar="FILE")
    overwrite: bool = option(False, "replace an existing --out file")
    max_new_tokens: int | None = option(None, "sft runs: longest generated answer, in tokens",
                                        default_text="the run's --max-new-tokens")

    def check(self) -> None:
        super().check()
        out = Path(self.out)
        if out.is_dir():
            raise GeloraError(f"--out {self.out!r} is a folder; give a file name such as preds.jsonl")
        if out.suffix.lower() != ".jsonl":  # one JSON object a line: a .csv or .json name would promise another format
            raise GeloraError(f"--out {self.out!r}: predictions are written as JSON lines; name the file .jsonl")
        if out.exists() and not self.overwrite:
            raise GeloraError(f"--out {self.out!r} exists; pass --overwrite to replace it, or give another file")
        if not out.parent.is_dir():
            raise GeloraError(f"--out {self.out!r}: folder {str(out.parent)!r} does not exist; create it first")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise GeloraError(f"--max-new-tokens must be at least 1 (got {self.max_new_tokens})")


@dataclass
class FinishedRun:
    """A run folder that training completed: its settings, its ``metrics.json`` and where its weights are."""

    folder: Path
    config: TrainConfig
    metrics: dict[str, Any]

    @property
    def weights(self) -> Path:
        """The adapter (or the fully fine-tuned model) with its tokenizer."""
        from gelora.train.methods import method_class

        return self.folder / method_class(self.config.method).output


def open_run(run_dir: str | Path) -> FinishedRun:
    """The finished run in ``run_dir``; one clear error for a missing, foreign, unfinished or damaged folder."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise GeloraError(f"run folder {str(run_dir)!r} does not exist; give the --out folder of a 'gelora train' run")
    if not (folder / RUN_FILE).is_file():
        raise GeloraError(f"{str(run_dir)!r} holds no gelora run ({RUN_FILE} is missing); give the --out folder of "
                          "a 'gelora train' run")
    if not (folder / METRICS_FILE).is_file():
        raise GeloraError(f"the run in {str(run_dir)!r} has not finished (no {METRICS_FILE}); finish it with "
                          "'gelora train ... --resume' first")
    try:
        run = FinishedRun(folder, TrainConfig.from_dict(json.loads((folder / RUN_FILE).read_text())),
                          json.loads((folder / METRICS_FILE).read_text()))
    except (ValueError, TypeError) as e:  # unreadable JSON, or fields of another gelora version
        raise GeloraError(f"cannot read the run in {str(run_dir)!r} ({e}); retrain it with this gelora") from None
    if not run.weights.is_dir():
        raise GeloraError(f"the run in {str(run_dir)!r} has no {run.weights.name}/ folder; retrain it (--overwrite)")
    return run


def load_trained_model(run: FinishedRun, task):
    """The trained model in eval mode: the run's adapter on the task's pretrained model, or the full model."""
    from gelora.models import load_model

    if not (run.weights / ADAPTER_CONFIG).is_file():  # --method full saved the whole model
        import transformers

        return load_model(str(run.weights), getattr(transformers, task.auto_model)).eval()
    from peft import PeftModel

    from gelora.logs import GeloraWarning

    with warnings.catch_warnings():
        # "head newly initialised": true of the base model, but the adapter brings the trained head.
        warnings.simplefilter("ignore", GeloraWarning)
        base = task.build_model()
    return PeftModel.from_pretrained(base, str(run.weights)).eval()


def _prepare(options: UseOptions, **data_options: Any):
    """Checked options, the run, its task (restored) and tokenizer, the rows of ``--data``, the device; before any
    model is loaded. ``data_options`` override the run's (those given as None keep the run's)."""
    from gelora.data import load_split
    from gelora.train.tasks import make_task
    from gelora.utils import resolve_device

    options.check()
    run = open_run(options.run_dir)
    overrides = {name: value for name, value in data_options.items() if value is not None}
    config = run.config
    config = replace(config, eval_batch_size=options.batch_size or config.evaluation_batch_size, progress=False,
                     data_options=replace(config.data_options, **overrides))
    task = make_task(config)
    not_used = sorted(set(overrides) - task.uses_data_options)
    if not_used:
        flags = ", ".join(map(flag, not_used))
        raise GeloraError(f"{flags} applies to sft runs only, not {task.name}; drop it")
    device = resolve_device(options.device)
    dataset = load_split(options.data)
    tokenizer = _run_tokenizer(run)
    task.restore(run.metrics, tokenizer)
    return run, task, tokenizer, dataset, device


def _run_tokenizer(run: FinishedRun):
    """The tokenizer of the run's model (what training used, and saved beside the weights), the run's first load.

    Runs trained before local models were recorded as absolute paths may name one relative to the directory of
    training; from another directory that name finds nothing, and the error says so.
    """
    from gelora.models import MINILM, SMOLLM2, load_tokenizer

    name = run.config.model
    path = Path(name).expanduser()
    if path.is_absolute() and not path.exists():  # the model folder was moved or deleted after training
        raise GeloraError(f"the run's model {name!r} no longer exists; put it back there, or write its new place as "
                          f"\"model\" in {str(run.folder / RUN_FILE)!r}")
    try:
        return load_tokenizer(name)
    except GeloraError as e:
        if name in (MINILM, SMOLLM2) or path.is_absolute():
            raise
        where = _trained_in(run)
        folder = "the folder it was trained in" + (f" ({str(where)!r})" if where else "")
        raise GeloraError(f"{e}. If {name!r} is a model folder relative to {folder}, run gelora from there "
                          "(runs trained now record local model folders as absolute paths)") from None


def _trained_in(run: FinishedRun) -> Path | None:
    """The directory the run was trained in, when its relative ``--out`` is the tail of the run folder's path."""
    out = Path(os.path.normpath(run.config.out))
    folder = run.folder.resolve()
    if out.is_absolute() or ".." in out.parts or folder.parts[len(folder.parts) - len(out.parts):] != out.parts:
        return None
    return Path(*folder.parts[:len(folder.parts) - len(out.parts)])


def evaluate_run(options: EvaluateOptions) -> dict[str, Any]:
    """The run's task metrics on the labelled rows of ``options.data``.

    Returns
    -------
    dict
        ``task``, ``method``, ``data``, ``rows``, ``metrics`` (the keys the run's ``metrics.json`` history has,
        computed the same way: the same model on the same rows gives the run's final scores) and ``info`` (e.g.
        for sft, ``eval_dropped``: rows left unscored, no completion token within the run's ``--max-length``).
    """
    from accelerate import Accelerator

    from gelora.train.loaders import eval_loader

    run, task, tokenizer, dataset, device = _prepare(options, eval_generate=options.eval_generate)
    data = task.load_eval(tokenizer, dataset)
    model = load_trained_model(run, task)
    _select(device)
    precision = run.metrics.get("mixed_precision", "no")
    if device.type == "cpu" and precision == "fp16":  # Accelerate has no fp16 autocast on CPU: a GPU run read here
        precision = "no"
    accelerator = Accelerator(cpu=device.type == "cpu", mixed_precision=precision)
    model, loader = accelerator.prepare(model, eval_loader(data, task.config.evaluation_batch_size))
    scores = task.evaluate(model, loader, accelerator)
    return {"task": task.name, "method": run.config.method, "data": options.data, "rows": len(dataset),
            "metrics": scores, "info": data.info}


def predict_run(options: PredictOptions) -> list[dict[str, Any]]:
    """One output per row of ``options.data`` (no labels needed), in order, also written to ``options.out``."""
    from gelora.io import atomic_write_text

    run, task, tokenizer, dataset, device = _prepare(options, max_new_tokens=options.max_new_tokens)
    task.check_inputs(dataset)
    _select(device)
    model = load_trained_model(run, task).to(device)
    rows = task.predict(model, tokenizer, dataset, task.config.evaluation_batch_size)
    atomic_write_text(options.out, "".join(json.dumps(row) + "\n" for row in rows))
    return rows


def _select(device) -> None:
    """Make ``cuda:N`` the current GPU: Accelerate, with one process, uses the current one."""
    import torch

    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
