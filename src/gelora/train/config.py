"""What a training run is: one ``TrainConfig`` (a plain, JSON-serialisable dataclass that also generates the CLI).

Every field is one ``gelora train`` option (``gelora.cli_args``): its help, choices and default live here and
nowhere else. ``validate`` checks everything that can be checked before data or a model is loaded; the task and
the method add their own checks (``Task.validate``, ``Method.validate``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from gelora.cli_args import option
from gelora.errors import GeloraError, flag
from gelora.models import MODEL_HELP, stored_model_name
from gelora.options import PlanOptions, ProfileOptions

DEFAULT_RANK = 8
MIXED_PRECISION = ("no", "fp16", "bf16")
# Accelerate's trackers and the package each one needs.
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml",
            "aim": "aim", "clearml": "clearml", "dvclive": "dvclive"}


def _method_names() -> tuple[str, ...]:
    from gelora.train.methods import METHODS

    return tuple(METHODS)


@dataclass
class DataOptions:
    """A user's own data (``--task classify``, ``sft``, ``qa``); each task refuses the options it does not use."""

    data: str | None = option(None, "training data: a .jsonl/.json/.csv/.parquet file, a folder with <split>.jsonl, "
                              "or a Hub dataset id")
    eval_data: str | None = option(None, "evaluation data, in the same forms", default_text="the --eval-split of "
                                   "--data, else a seeded --eval-fraction of the training rows")
    data_config: str | None = option(None, "Hub dataset configuration (e.g. main for openai/gsm8k)")
    train_split: str = option("train", "split of --data to train on")
    eval_split: str | None = option(None, "split to evaluate on", default_text="validation (else test) where the "
                                    "data has one")
    eval_fraction: float = option(0.1, "without evaluation data: share of the training rows held out (seeded)")
    text_columns: list[str] | None = option(None, "classify: the text column, or two (a pair)")
    label_column: str = option("label", "classify: the label column")
    problem: str | None = option(None, "classify: what the labels are", choices=("classification", "regression"),
                                 default_text="regression for float labels, else classification")
    prompt_column: str | None = option(None, "sft: the column to use as the prompt (with --completion-column)",
                                       default_text="'messages', else 'prompt' + 'completion'")
    completion_column: str | None = option(None, "sft: the column to use as the completion (the loss covers it)")
    packing: bool = option(False, "sft: pack rows into blocks of --max-length tokens (position ids restart per row)")
    eval_generate: int = option(0, "sft: greedy answers to this many evaluation prompts at each evaluation, saved "
                                "to generations.jsonl and scored by final-number exact match for GSM8K-style data")
    max_new_tokens: int = option(256, "sft: longest generated answer, in tokens")
    doc_stride: int | None = option(None, "qa: tokens shared by consecutive windows of a long context",
                                    default_text="a third of --max-length")
    max_answer_length: int = option(30, "qa: longest answer span, in tokens")

    def given(self) -> set[str]:
        """The options set to something other than their default."""
        default = DataOptions()
        return {f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(default, f.name)}


@dataclass
class TrainConfig:
    """One fine-tuning run, for :func:`gelora.train.runner.train`. ``out`` receives metrics.json, the adapter (or
    full model), checkpoints and, for GeLoRA, the profile and plan. ``batch_size`` is per process.

    Every field except the three nested option sets is a ``gelora train`` option of the same name in kebab case
    (``max_grad_norm`` is ``--max-grad-norm``, ``progress=False`` is ``--no-progress``, ``model`` is the positional
    MODEL), and so is every field of those sets: ``gelora train --help`` gives each one's meaning and default, as
    does the field's ``metadata["help"]`` (``dataclasses.fields``). A ``None`` default is resolved at run time or
    means none / no limit, as the help says (see also the properties ``lora_rank``, ``learning_rate``,
    ``evaluation_batch_size``). Nothing is checked on construction: :meth:`validate` raises ``GeloraError`` for
    what cannot work, and :func:`~gelora.train.runner.train` calls it first.

    Attributes
    ----------
    model, task, method, out : str
        Required: the model (an alias such as ``minilm``, a Hub id, a folder or a .gguf file), ``glue/<name>`` or
        one of ``classify``, ``sft``, ``qa``, ``squad``, ``squad_v2``, the method (``gelora.train.methods.METHODS``)
        and the output folder.
    epochs, max_steps, batch_size, eval_batch_size, max_length, max_train_samples, max_eval_samples
        Length of the run (``max_steps`` overrides ``epochs``), rows per step and process, tokens per row, and
        caps on the rows used.
    lr, weight_decay, warmup_ratio, max_grad_norm, mixed_precision, gradient_checkpointing
        AdamW with a linear warm-up and decay of the learning rate, gradient clipping, autocast precision and
        activation recomputation.
    rank, lora_alpha, lora_dropout, target_modules, plan
        The adapters: starting or uniform rank, scale, dropout, modules adapted, and a saved GeLoRA plan.
    eva_rho, adalora_orth_reg_weight
        Settings of EVA and of AdaLoRA.
    geolora_tau, geolora_r_max, geolora_augment_every, geolora_lr, geolora_scaling
        Settings of GeoLoRA (``geolora``, ``gelora-geolora``). A method refuses any method-specific setting it
        does not read, unless left at its default.
    seed, resume, overwrite, checkpoint_every, eval_every_epoch, data_dir, report_to, progress
        Reproducibility, the run folder (continue or replace an earlier run, checkpoint spacing), evaluation
        schedule, the local GLUE folder, experiment trackers and the progress bar.
    data_options : DataOptions
        A user's own data (``--data``, ``--text-columns``, ...; the "your own data" group of the help).
    profile_options : gelora.options.ProfileOptions
        How GeLoRA methods profile the model when no ``plan`` is given.
    plan_options : gelora.options.PlanOptions
        How GeLoRA methods turn the profile into ranks when no ``plan`` is given. Other methods refuse profile
        and plan options other than the defaults.
    """

    model: str = option(help=MODEL_HELP, positional=True)
    task: str = option(help="glue/<name> (cola, sst2, mrpc, stsb, qnli, rte, mnli, qqp); classify (labelled rows "
                       "of --data); sft (instruction tuning of a decoder LLM); qa, squad, squad_v2 (extractive question "
                       "answering, SQuAD schema)")
    method: str = option(help="how to fine-tune", choices=_method_names)
    out: str = option(help="output folder (metrics.json, adapter/, checkpoint/)")
    plan: str | None = option(None, "gelora, gelora-geolora: a plan.json from 'gelora plan' instead of profiling now")
    rank: int | None = option(None, "LoRA rank; AdaLoRA's average final rank; EVA's and GeoLoRA's starting rank",
                              default_text=str(DEFAULT_RANK))
    epochs: int = option(3, "passes over the training rows")
    lr: float | None = option(None, "learning rate", default_text="the method's: 5e-4 for adapters, 2e-5 for full")
    batch_size: int = option(32, "rows per step and process")
    eval_batch_size: int | None = option(None, "rows per evaluation batch and process (the loss, and "
                                         "--eval-generate's answers: larger batches generate faster)",
                                         default_text="--batch-size")
    max_length: int = option(128, "tokens per row (longer rows are truncated)")
    seed: int = option(0, "seeds data order, initialisation, dropout and profiling")
    resume: bool = option(False, "continue the run in --out from its last checkpoint")
    overwrite: bool = option(False, "delete the gelora run in --out and start over")
    data_dir: str | None = option(None, "local GLUE folder", default_text="$GELORA_DATA_DIR, else the Hub")
    max_train_samples: int | None = option(None, "use the first N training rows")
    max_eval_samples: int | None = option(None, "use the first N evaluation rows")
    max_steps: int | None = option(None, "the run's length in optimizer steps (overrides --epochs, as in "
                                   "Transformers' Trainer)")
    checkpoint_every: int = option(200, "optimizer steps between checkpoints (also at every epoch end)")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup_ratio: float = option(0.06, "share of the steps with a linear learning-rate warm-up, in [0, 1]")
    max_grad_norm: float = option(1.0, "clip gradients to this norm (0: no clipping)")
    lora_alpha: float | None = option(None, "fixed LoRA alpha", default_text="2 x each module's rank")
    lora_dropout: float = option(0.1, "dropout on the adapters' input, in [0, 1)")
    target_modules: list[str] | None = option(None, "module names to adapt", default_text="every linear layer "
                                              "in each block")
    gradient_checkpointing: bool = option(False, "recompute activations in the backward pass: less memory for "
                                          "long sequences, about a third more time per step")
    eval_every_epoch: bool = option(True, "evaluation after every epoch (then only at the end)")
    mixed_precision: str | None = option(None, "autocast precision", choices=MIXED_PRECISION,
                                         default_text="accelerate config's, else no")
    report_to: list[str] | None = option(None, "experiment trackers through Accelerate (tensorboard, wandb, mlflow, "
                                         "comet_ml, aim, clearml, dvclive): loss, learning rate, metrics, ranks")
    eva_rho: float = option(2.0, "EVA: a module may get up to rho x R ranks (>= 1)")
    adalora_orth_reg_weight: float = option(0.5, "AdaLoRA: weight of the orthogonality regulariser in the loss")
    geolora_tau: float = option(0.15, "GeoLoRA: relative truncation tolerance, in [0, 1) (the authors' GLUE value)")
    geolora_r_max: int | None = option(None, "GeoLoRA: largest rank a module may grow to",
                                       default_text="2 x its starting rank")
    geolora_augment_every: int = option(1, "GeoLoRA: geometric step every N optimizer steps, AdamW on S between")
    geolora_lr: float | None = option(None, "GeoLoRA: step size of S in the geometric step", default_text="--lr")
    # y = W0 x + s V S U^T x. U, V are orthonormal, so S must reach the size of dW's singular values; s = 10 lets
    # a step of the adapters' lr move the function about as far as LoRA's (alpha = 2r) step does on MiniLM-sized
    # layers. With s = 1, S stayed near 1e-5 after 32 steps of lr 2e-3 and the adapter learned nothing.
    geolora_scaling: float = option(10.0, "GeoLoRA: fixed output scale s in W0 + s V S U^T")
    progress: bool = option(True, "the progress bar")
    data_options: DataOptions = field(default_factory=DataOptions, metadata={"cli": False})
    profile_options: ProfileOptions = field(default_factory=ProfileOptions, metadata={"cli": False})
    plan_options: PlanOptions = field(default_factory=PlanOptions, metadata={"cli": False})

    def __post_init__(self) -> None:
        # Absolute, so that the run reopens from any directory; an old run.json with a relative path reads the same
        # from the directory it was trained in, so --resume there still matches.
        self.model = stored_model_name(self.model)

    @property
    def lora_rank(self) -> int:
        return self.rank if self.rank is not None else DEFAULT_RANK

    @property
    def evaluation_batch_size(self) -> int:
        return self.eval_batch_size or self.batch_size

    @property
    def learning_rate(self) -> float:
        from gelora.train.methods import method_class

        return self.lr if self.lr is not None else method_class(self.method).default_lr

    def validate(self) -> None:
        """Raise ``GeloraError`` for settings that cannot work, before anything is loaded."""
        from gelora.train.methods import method_class
        from gelora.train.tasks import make_task

        method_class(self.method).validate(self)
        make_task(self).validate()
        counts = ("epochs", "batch_size", "max_length", "checkpoint_every", "geolora_augment_every")
        for name in (*counts, "eval_batch_size", "rank", "max_train_samples", "max_eval_samples", "max_steps", "geolora_r_max"):
            value = getattr(self, name)
            if value is not None and value < 1:  # None: the default / no limit
                raise GeloraError(f"{flag(name)} must be at least 1 (got {value})")
        if self.seed < 0:
            raise GeloraError(f"--seed must be a non-negative integer (got {self.seed})")
        if self.learning_rate <= 0:
            raise GeloraError(f"--lr must be positive (got {self.lr:g})")
        for name, low, high, closed in (("warmup_ratio", 0, 1, True), ("lora_dropout", 0, 1, False),
                                        ("geolora_tau", 0, 1, False)):
            value = getattr(self, name)
            if not (low <= value <= high if closed else low <= value < high):
                interval = f"[{low}, {high}{']' if closed else ')'}"
                raise GeloraError(f"{flag(name)} must be in {interval} (got {value:g})")
        for name in ("weight_decay", "max_grad_norm", "adalora_orth_reg_weight"):
            if getattr(self, name) < 0:
                raise GeloraError(f"{flag(name)} must be >= 0 (got {getattr(self, name):g})")
        if self.resume and self.overwrite:
            raise GeloraError("--resume and --overwrite contradict each other; pass one of them")
        for name in ("geolora_scaling", "geolora_lr"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise GeloraError(f"{flag(name)} must be positive (got {value:g})")
        if self.geolora_r_max is not None and self.geolora_r_max < self.lora_rank:
            raise GeloraError(f"--geolora-r-max {self.geolora_r_max} is below the starting rank {self.lora_rank}; "
                              "raise it or lower --rank")
        if self.eva_rho < 1:
            raise GeloraError(f"--eva-rho must be >= 1 (got {self.eva_rho:g})")
        if self.lora_alpha is not None and self.lora_alpha <= 0:
            raise GeloraError(f"--lora-alpha must be positive (got {self.lora_alpha:g})")
        for tracker in self.report_to or ():
            if tracker not in TRACKERS:
                raise GeloraError(f"--report-to {tracker!r} is not a tracker; choose from {', '.join(TRACKERS)}")
            if importlib.util.find_spec(TRACKERS[tracker]) is None:
                raise GeloraError(f"--report-to {tracker} needs the package {TRACKERS[tracker]}: pip install "
                                  f"{TRACKERS[tracker]}")
        self.profile_options.validate()
        self.plan_options.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["data_options"] = DataOptions(**d.get("data_options", {}))
        d["profile_options"] = ProfileOptions(**d.get("profile_options", {}))
        d["plan_options"] = PlanOptions(**d.get("plan_options", {}))
        return cls(**d)

    def run_identity(self) -> dict[str, Any]:
        """The settings that make two runs the same run (what ``--resume`` must match), defaults resolved."""
        d = self.to_dict() | {"lr": self.learning_rate, "rank": self.lora_rank}
        # batch_size is per process: a resume may change it with the number of processes (checked as the global
        # batch against the checkpoint, see checkpoint.check_global_batch).
        # epochs and max_steps give the run's length: a finished run may be continued for more (checkpoint._extends).
        # eval_batch_size changes how fast evaluation runs, not what it computes.
        for key in ("out", "resume", "overwrite", "progress", "data_dir", "batch_size", "eval_batch_size", "report_to",
                    "epochs", "max_steps"):
            d.pop(key)
        return d
