"""What ``--tasks`` names: a GLUE task (``rte``) or ``KIND:SOURCE`` for the tasks over other data.

``sft:gsm8k``, ``qa:squad_v2`` / ``qa:squad`` use the data folder beside the GLUE folder (``../shared/data/gsm8k``
next to ``--data-dir ../shared/data/glue``) when it exists, else the Hub (``openai/gsm8k``, ``rajpurkar/squad_v2``).
Any other SOURCE is a file, a folder of ``<split>.*`` files, or a Hub dataset id: ``sft:rows.jsonl`` (with the
bench's ``--prompt-column`` / ``--completion-column``), ``qa:my_squad.jsonl``, ``classify:reviews.csv`` (with its
``--text-columns`` / ``--label-column``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gelora.errors import GeloraError
from gelora.train.config import DataOptions

KINDS = ("sft", "qa", "classify")
# Known data sets: local folder name, Hub id (and config), and the columns they need.
PRESETS = {
    "gsm8k": dict(hub="openai/gsm8k", config="main", options={"prompt_column": "question",
                                                             "completion_column": "answer"}),
    "squad_v2": dict(hub="rajpurkar/squad_v2", config=None, options={}),
    "squad": dict(hub="rajpurkar/squad", config=None, options={}),
}
# The runner's question-answering tasks: their F1 / EM are SQuAD's official percentages (0..100), not fractions.
QA_TASKS = ("squad_v2", "squad", "qa")


@dataclass(frozen=True)
class BenchTask:
    """One ``--tasks`` entry: its ``label`` (tables, run folders), the runner's ``task`` and its data options."""

    label: str
    task: str
    data: DataOptions = field(default_factory=DataOptions)

    @property
    def folder(self) -> str:
        return re.sub(r"[^\w.=+-]+", "_", self.label)

    @property
    def preset(self) -> str | None:
        """The known data set this task reads (``gsm8k`` for ``sft:gsm8k``), or None (a GLUE task, a user's data)."""
        kind, _, source = self.label.partition(":")
        return source if kind in KINDS and source in PRESETS else None

    @property
    def score_scale(self) -> float:
        """What a perfect main score is: 100 for question answering (SQuAD's percentages), else 1."""
        return 100.0 if self.task in QA_TASKS else 1.0


def parse_task(text: str, glue_dir: Path | None, columns: Mapping[str, dict[str, Any]] | None = None) -> BenchTask:
    """The bench task ``text`` names (GLUE by name, else ``KIND:SOURCE``); one clear error for anything else.

    ``columns`` maps a KIND to the user's column options for its tasks (``{"classify": {"label_column": "y"}}``);
    a known data set (``sft:gsm8k``) keeps its own columns.
    """
    from gelora.data import GLUE_TASKS, task_spec

    kind, colon, source = text.strip().partition(":")
    if not colon:
        return BenchTask(task_spec(kind).name, f"glue/{task_spec(kind).name}")
    if kind == "glue":
        return parse_task(source, glue_dir, columns)
    if kind not in KINDS or not source:
        raise GeloraError(
            f"--tasks entry {text!r}: use a GLUE task ({', '.join(GLUE_TASKS)}) or KIND:SOURCE with KIND one of "
            f"{', '.join(KINDS)} (e.g. sft:gsm8k, qa:squad_v2, classify:reviews.csv)"
        )
    preset = PRESETS.get(source)
    data, options = source, dict((columns or {}).get(kind, {}))
    if preset is not None:
        local = glue_dir.parent / source if glue_dir is not None else None
        data = str(local) if local is not None and local.is_dir() else preset["hub"]
        options |= preset["options"] | ({"data_config": preset["config"]} if data == preset["hub"] else {})
    task = source if kind == "qa" and source in QA_TASKS else kind
    return BenchTask(f"{kind}:{source}", task, DataOptions(data=data, **options))
