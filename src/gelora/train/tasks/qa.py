"""Extractive question answering in the SQuAD schema (``--task qa``, ``squad``, ``squad_v2``).

Sliding windows over long contexts (``--doc-stride``), n-best span search with ``--max-answer-length`` and the null
answer for SQuAD v2 (``gelora.train.tasks.qa_features``), scored with the official SQuAD v1.1 / v2.0 EM and F1
(``gelora.train.tasks.squad_metric``). ``--task squad`` / ``squad_v2`` read ``rajpurkar/squad(_v2)`` from the Hub
unless ``--data`` gives a file or folder (e.g. the local sample ``../shared/data/squad_v2``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gelora.errors import GeloraError
from gelora.train.tasks.base import Task, TaskData, batches, new_head_modules
from gelora.train.tasks.qa_features import (
    EVAL_ONLY_COLUMNS,
    check_answers,
    postprocess_predictions,
    prepare_eval_features,
    prepare_train_features,
    question_first,
    window_collator,
)
from gelora.train.tasks.squad_metric import squad_v1_scores, squad_v2_scores

HUB = {"squad": "rajpurkar/squad", "squad_v2": "rajpurkar/squad_v2"}
LOGIT_PAD = -1e4  # below any real logit: padded positions never win a span


class QuestionAnswering(Task):
    """Start and end logits over the context tokens; SQuAD v2 when the task says so or the data has unanswerables."""

    auto_model = "AutoModelForQuestionAnswering"
    peft_task_type = "QUESTION_ANS"
    uses_data_options = frozenset(
        {"data", "eval_data", "data_config", "train_split", "eval_split", "eval_fraction", "doc_stride",
         "max_answer_length"}
    )

    def __init__(self, config):
        super().__init__(config)
        self.kind = config.task.lower()
        self.version_2 = self.kind == "squad_v2"

    @property
    def name(self) -> str:
        return self.kind

    @property
    def metric(self) -> str:
        return "f1"

    @property
    def doc_stride(self) -> int:
        stride = self.config.data_options.doc_stride
        return stride if stride is not None else self.config.max_length // 3

    def validate(self) -> None:
        check_qa_head(self.config.model)  # first: the model's kind says more than its limits
        super().validate()
        options = self.config.data_options
        if self.kind == "qa" and options.data is None:
            raise GeloraError("--task qa needs --data (SQuAD schema: id, context, question, answers)")
        if not 0 < self.doc_stride < self.config.max_length:
            raise GeloraError(f"--doc-stride must be in [1, --max-length) (got {self.doc_stride})")
        if options.max_answer_length < 1:
            raise GeloraError(f"--max-answer-length must be at least 1 (got {options.max_answer_length})")

    def load_splits(self):
        if self.config.data_options.data is None:  # squad / squad_v2 from the Hub
            from dataclasses import replace

            options = replace(self.config.data_options, data=HUB[self.kind], eval_split="validation")
            self.config = replace(self.config, data_options=options)
        return super().load_splits()

    def hold_out(self, rows, fraction: float):
        """Held out by context, as SQuAD splits by article: no passage is read in training and in evaluation."""
        import numpy as np

        check_answers(rows)  # the schema first: the split reads the contexts

        contexts = sorted(set(rows["context"]))
        held = set(np.random.default_rng(0).permutation(len(contexts))[: max(1, round(fraction * len(contexts)))])
        chosen = {contexts[i] for i in held}
        evaluation = [i for i, context in enumerate(rows["context"]) if context in chosen]
        if len(evaluation) == len(rows):
            raise GeloraError("every row shares one context, so none is left to train on; give --eval-data")
        training = sorted(set(range(len(rows))) - set(evaluation))
        return rows.select(training), rows.select(evaluation)

    def check_version(self, rows, split: str) -> int:
        """The number of unanswerable questions in ``rows``; SQuAD v1.1 (``--task squad``) refuses any."""
        unanswerable = sum(not row["text"] for row in rows["answers"])
        if unanswerable and self.kind == "squad":
            raise GeloraError(f"--task squad is SQuAD v1.1, where every question has an answer, and {unanswerable} "
                              f"{split} question(s) have none; use --task squad_v2 (or --task qa)")
        return unanswerable

    def load(self, tokenizer) -> TaskData:
        train, evaluation = self.load_splits()
        check_answers(train)
        # A model trained on unanswerable questions learned the null answer: a v2 run, whatever it is scored on.
        self.version_2 = self.version_2 or self.check_version(train, "training") > 0
        data = self.load_eval(tokenizer, evaluation)
        length, stride = self.config.max_length, self.doc_stride
        train_features = train.map(
            prepare_train_features, batched=True, remove_columns=train.column_names,
            fn_kwargs={"tokenizer": tokenizer, "max_length": length, "doc_stride": stride},
        )
        data.train = list(train_features)
        pairs = zip(train["question"], train["context"])  # profiled in the windows' order
        data.profile_texts = list(pairs) if question_first(tokenizer) else [(c, q) for q, c in pairs]
        data.info["train_windows"] = len(train_features)
        return data

    def restore(self, metrics: dict[str, Any], tokenizer) -> None:
        """The run's SQuAD version (v2: the null answer competes with the spans)."""
        super().restore(metrics, tokenizer)
        self.version_2 = metrics.get("squad_version") == 2

    def load_eval(self, tokenizer, dataset) -> TaskData:
        """Evaluation windows of ``dataset`` (SQuAD v2 scoring once a row is unanswerable)."""
        check_answers(dataset)
        self.version_2 = self.version_2 or self.check_version(dataset, "evaluation") > 0
        self.examples, self.features = dataset, self._eval_features(dataset, tokenizer)
        return TaskData(
            train=[],
            eval=list(self.features.remove_columns(list(EVAL_ONLY_COLUMNS))),
            collate=window_collator(tokenizer),
            profile_texts=[],
            info={"squad_version": 2 if self.version_2 else 1, "eval_windows": len(self.features)},
        )

    def _eval_features(self, dataset, tokenizer):
        return dataset.map(
            prepare_eval_features, batched=True, remove_columns=dataset.column_names,
            fn_kwargs={"tokenizer": tokenizer, "max_length": self.config.max_length, "doc_stride": self.doc_stride},
        )

    def build_model(self) -> torch.nn.Module:
        from transformers import AutoModelForQuestionAnswering

        from gelora.models import load_task_model

        return load_task_model(self.config.model, AutoModelForQuestionAnswering)

    def head_modules(self, model: torch.nn.Module) -> list[str]:
        """The span head (``qa_outputs``)."""
        return new_head_modules(model)

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, loader, accelerator) -> dict[str, float]:
        """Official SQuAD scores of the best span per question, over all its windows."""
        model.eval()
        starts, ends = [], []
        for batch in loader:
            out = model(**batch)
            logits = torch.stack([out.start_logits, out.end_logits]).float()
            logits = accelerator.pad_across_processes(logits, dim=2, pad_index=LOGIT_PAD)
            starts_ends = accelerator.gather_for_metrics(logits.transpose(0, 1)).cpu().numpy()
            starts += list(starts_ends[:, 0])
            ends += list(starts_ends[:, 1])
        model.train()
        predictions = self._answers(self.examples, self.features, starts, ends)
        scores = squad_v2_scores(predictions, self.examples) if self.version_2 else squad_v1_scores(
            predictions, self.examples)
        return {"f1": scores["f1"], **scores}

    def check_inputs(self, dataset) -> None:
        from gelora.data import check_columns

        check_columns(dataset, ("id", "context", "question"))

    @torch.no_grad()
    def predict(self, model: torch.nn.Module, tokenizer, dataset, batch_size: int) -> list[dict[str, Any]]:
        """``{"id", "answer"}`` per question (``""``: no answer, SQuAD v2); ``answers`` are not needed."""
        self.check_inputs(dataset)
        features = self._eval_features(dataset, tokenizer)
        rows = list(features.remove_columns(list(EVAL_ONLY_COLUMNS)))
        device = next(model.parameters()).device
        model.eval()
        starts, ends = [], []
        for batch in batches(rows, window_collator(tokenizer), batch_size, device):
            out = model(**batch)
            starts += list(out.start_logits.float().cpu().numpy())
            ends += list(out.end_logits.float().cpu().numpy())
        answers = self._answers(dataset, features, starts, ends)
        return [{"id": qid, "answer": answers[qid]} for qid in dataset["id"]]

    def _answers(self, examples, features, starts: list, ends: list) -> dict[str, str]:
        """Answer text per example id from per-window logit rows of any lengths (padded here to one width)."""
        width = max(len(s) for s in starts)
        start_logits, end_logits = (
            np.stack([np.pad(row, (0, width - len(row)), constant_values=LOGIT_PAD) for row in rows])
            for rows in (starts, ends)
        )
        return postprocess_predictions(
            examples, features, start_logits, end_logits,
            max_answer_length=self.config.data_options.max_answer_length, version_2=self.version_2,
        )


def check_qa_head(model: str) -> None:
    """Refuse, before loading weights, a model Transformers has no question-answering head for."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES

    from gelora.models import load_config

    kind = load_config(model).model_type
    if kind not in MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES:
        raise GeloraError(
            f"--task qa needs a model with a question-answering head; Transformers has none for {kind} ({model!r}); "
            "use an encoder such as minilm / BERT / RoBERTa"
        )
