"""Instruction tuning of decoder LLMs (``--task sft``): TRL's data formats, loss on the completion tokens only.

Data: a ``messages`` column, ``prompt`` + ``completion`` columns, or any two columns named with ``--prompt-column``
/ ``--completion-column`` (GSM8K: question / answer), from a file, a folder or the Hub (``gelora.data.load_split``).
The tokenizer's chat template is applied when it has one; rows longer than ``--max-length`` are cut and counted;
``--packing`` fills fixed-length blocks. Evaluation: loss and perplexity over the completion tokens of the
evaluation rows, and with ``--eval-generate N`` greedy answers to N evaluation prompts, saved to
``DIR/generations.jsonl`` and scored by exact match of the final number when the references end ``#### <number>``
(GSM8K).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from gelora.errors import GeloraError
from gelora.train.tasks.base import Task, TaskData
from gelora.train.tasks.sft_data import (
    COMPLETION,
    IGNORE_INDEX,
    MESSAGES,
    PROMPT,
    numbers_as_text,
    pack,
    sft_columns,
    split_conversation,
    tokenize_sft,
)

GENERATIONS_FILE = "generations.jsonl"


class SupervisedFineTuning(Task):
    """Causal-LM fine-tuning on prompt / completion pairs or conversations."""

    auto_model = "AutoModelForCausalLM"
    peft_task_type = "CAUSAL_LM"
    greater_is_better = False
    outputs = (GENERATIONS_FILE,)
    uses_data_options = frozenset(
        {"data", "eval_data", "data_config", "train_split", "eval_split", "eval_fraction", "prompt_column",
         "completion_column", "packing", "eval_generate", "max_new_tokens"}
    )

    def __init__(self, config):
        super().__init__(config)
        self.generations_path: Path | None = Path(config.out) / GENERATIONS_FILE  # --eval-generate's answers

    @property
    def metric(self) -> str:
        return "loss"

    def validate(self) -> None:
        check_decoder(self.config.model)  # first: the model's kind says more than its limits
        super().validate()
        options = self.config.data_options
        if options.data is None:
            raise GeloraError("--task sft needs --data (messages, or prompt + completion columns; or name two with "
                              "--prompt-column / --completion-column)")
        if (options.prompt_column is None) != (options.completion_column is None):
            raise GeloraError("--prompt-column and --completion-column go together; give both or neither")
        if options.eval_generate < 0 or options.max_new_tokens < 1:
            raise GeloraError(f"--eval-generate must be >= 0 and --max-new-tokens >= 1 (got {options.eval_generate}, "
                              f"{options.max_new_tokens})")

    def load(self, tokenizer) -> TaskData:
        from transformers import default_data_collator

        options = self.config.data_options
        train, evaluation = self.load_splits()
        train = sft_columns(train, options.prompt_column, options.completion_column, where="the training data")
        trained = self._tokenize(train, tokenizer)
        data = self.load_eval(tokenizer, evaluation)
        data.train = pack(trained.rows, self.config.max_length, tokenizer.pad_token_id) if options.packing else \
            trained.rows
        if options.packing:
            data.collate = default_data_collator
        data.profile_texts = [(prompt + completion,) for prompt, completion in trained.texts]
        data.info = {"train_truncated": trained.truncated, "train_dropped": trained.dropped, **data.info,
                     "packed_blocks": len(data.train) if options.packing else None,
                     "train_rows": len(trained.rows)}  # train_samples counts what the model is fed: packed blocks
        return data

    def hold_out(self, rows, fraction: float):
        """Rows checked before the seeded split, so that an error names the row's place in the file."""
        options = self.config.data_options
        sft_columns(rows, options.prompt_column, options.completion_column, where="the training data")
        return super().hold_out(rows, fraction)

    def _tokenize(self, rows, tokenizer):
        tokenized = tokenize_sft(rows, tokenizer, self.config.max_length)
        if not tokenized.rows:
            raise GeloraError(f"no row keeps a completion token within --max-length {self.config.max_length}; "
                              "raise --max-length")
        return tokenized

    def load_eval(self, tokenizer, dataset) -> TaskData:
        """The evaluation rows (completion-token loss; ``self.evaluation`` keeps them for ``--eval-generate``)."""
        from transformers import DataCollatorForSeq2Seq

        options = self.config.data_options
        self.tokenizer = tokenizer
        self.evaluation = sft_columns(dataset, options.prompt_column, options.completion_column,
                                      where="the evaluation data")
        self.generation = self._generation_rows(self.evaluation.select(range(min(options.eval_generate,
                                                                                  len(self.evaluation)))))
        scored = self._tokenize(self.evaluation, tokenizer)
        padded = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX)
        return TaskData(train=[], eval=scored.rows, collate=padded, eval_collate=padded, profile_texts=[],
                        info={"eval_truncated": scored.truncated, "eval_dropped": scored.dropped})

    def build_model(self) -> torch.nn.Module:
        from transformers import AutoModelForCausalLM

        from gelora.models import load_model

        model = load_model(self.config.model, AutoModelForCausalLM)
        model.config.use_cache = False  # training: no cache (packed rows must not attend across their borders)
        if model.config.pad_token_id is None:
            model.config.pad_token_id = self.tokenizer.pad_token_id
        return model

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor], accelerator) -> torch.Tensor:
        """Mean loss per completion token of the whole global batch, not of each process's share.

        Each process divides its summed token losses by the global token count, times the number of processes
        (which DDP's gradient averaging divides out again): 2 processes of 2 rows then train exactly like 1 of 4,
        whose rows hold other numbers of completion tokens. As Transformers' Trainer does.
        """
        labels = batch["labels"][:, 1:]
        total = accelerator.reduce((labels != IGNORE_INDEX).sum(), reduction="sum")
        out = model(**batch, num_items_in_batch=total)
        if accelerator.num_processes == 1:
            return out.loss
        # Only the token part scales with the processes; what a method adds to the loss (AdaLoRA's orthogonal
        # regulariser) is the same on every process and must not be multiplied.
        tokens = torch.nn.functional.cross_entropy(
            out.logits[:, :-1].float().transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="sum"
        ) / total
        return tokens * accelerator.num_processes + (out.loss - tokens)

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, loader, accelerator) -> dict[str, float]:
        """Mean loss per completion token over every evaluation row (and its perplexity), gathered over processes."""
        model.eval()
        sums, counts = [], []
        for batch in loader:
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
            labels = batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1].transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none"
            )
            # Per row, gathered without the rows Accelerate repeats to even out the processes' last batches.
            row_sums, row_counts = accelerator.gather_for_metrics((losses.sum(1), (labels != IGNORE_INDEX).sum(1)))
            sums.append(row_sums.double().cpu())
            counts.append(row_counts.cpu())
        loss = (torch.cat(sums).sum() / torch.cat(counts).sum()).item()
        scores = {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}
        if self.config.data_options.eval_generate:
            scores |= self._generate(accelerator.unwrap_model(model), accelerator)
        model.train()
        return scores

    def _generate(self, model: torch.nn.Module, accelerator) -> dict[str, float]:
        """Greedy answers to the first ``--eval-generate`` evaluation prompts (main process), saved for people."""
        from gelora.io import atomic_write_text
        from gelora.train.tasks.generation import exact_match, generate_answers, gsm8k_answer

        prompts, references = self.generation
        answers = generate_answers(model, self.tokenizer, prompts, max_new_tokens=self.config.data_options.max_new_tokens,
                                   batch_size=self.config.evaluation_batch_size)
        scores = {}
        if all("####" in r for r in references):
            scores["exact_match"] = exact_match([gsm8k_answer(a) for a in answers],
                                                [gsm8k_answer(r) for r in references])
        if accelerator.is_main_process and self.generations_path is not None:
            lines = [json.dumps({"prompt": p, "generated": a, "reference": r}) + "\n"
                     for p, a, r in zip(prompts, answers, references)]
            atomic_write_text(self.generations_path, "".join(lines))
        return scores

    @staticmethod
    def _generation_rows(rows) -> tuple[list, list[str]]:
        """Prompts and references of the ``--eval-generate`` rows, checked when the data are read (before training):
        conversations are answered up to their last assistant turn, which is the reference."""
        if MESSAGES in rows.column_names:
            pairs = [split_conversation(m, i, answered=True) for i, m in enumerate(rows[MESSAGES])]
            return [p for p, _ in pairs], [r for _, r in pairs]
        return list(rows[PROMPT]), list(rows[COMPLETION])

    def restore(self, metrics: dict[str, Any], tokenizer) -> None:
        """A finished run: its ``generations.jsonl`` stays as training wrote it."""
        super().restore(metrics, tokenizer)
        self.generations_path = None

    def check_inputs(self, dataset) -> None:
        self._prompts(dataset)

    def _prompts(self, dataset) -> list[str | list[dict]]:
        """What ``predict`` answers: the run's prompt column, or, for a run on conversations, a ``messages`` column
        (each conversation up to its last assistant turn, or whole when it ends with a user turn)."""
        named = self.config.data_options.prompt_column
        if named is None and MESSAGES in dataset.column_names and PROMPT not in dataset.column_names:
            return [split_conversation(m, i)[0] for i, m in enumerate(dataset[MESSAGES])]
        column = named or PROMPT
        if column not in dataset.column_names:
            alternative = "" if named else f" or a {MESSAGES!r} column (conversations)"
            raise GeloraError(f"the data has no prompt column {column!r} (columns: {', '.join(dataset.column_names)})"
                              f"; give a file with a {column!r} column (one prompt per row){alternative}")
        dataset = numbers_as_text(dataset, [column])  # as training read them
        bad = next((i for i, p in enumerate(dataset[column]) if not isinstance(p, str)), None)
        if bad is not None:
            raise GeloraError(f"prompt column {column!r} holds a {type(dataset[bad][column]).__name__} in row {bad}, "
                              "not text; fill or drop that row")
        return list(dataset[column])

    def predict(self, model: torch.nn.Module, tokenizer, dataset, batch_size: int) -> list[dict[str, Any]]:
        """``{"prompt", "generated"}`` per row: greedy answers of at most ``--max-new-tokens`` tokens (``prompt`` is
        the conversation answered, for ``messages`` rows)."""
        from gelora.train.tasks.generation import generate_answers

        prompts = self._prompts(dataset)
        answers = generate_answers(model, tokenizer, prompts, max_new_tokens=self.config.data_options.max_new_tokens,
                                   batch_size=batch_size)
        return [{"prompt": prompt, "generated": answer} for prompt, answer in zip(prompts, answers)]


def check_decoder(model: str) -> None:
    """Refuse an encoder-only model before loading it: SFT needs a causal language model."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    from gelora.models import load_config

    kind = load_config(model).model_type
    if kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or kind in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise GeloraError(
            f"--task sft needs a decoder (causal) language model; {model!r} is a {kind} encoder; use a decoder such "
            "as smollm2, or --task classify / qa for encoders"
        )
