"""What ``--tasks`` names: a GLUE task (``rte``) or ``KIND:SOURCE`` for the tasks over other data.

``sft:gsm8k``, ``qa:squad_v2`` / ``qa:squad`` use the data folder beside the GLUE folder (``../shared/data/gsm8k``
next to ``--data-dir ../shared/data/glue``) when it exists, else the Hub (``openai/gsm8k``, ``rajpurkar/squad_v2``).
Any other SOURCE is a file, a folder of ``<split>.*`` files, or a Hub dataset id: ``sft:rows.jsonl``,
``qa:my_squad.jsonl``, ``classify:reviews.csv`` (with the bench's ``--text-columns`` / ``--label-column``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True)
class BenchTask:
    """One ``--tasks`` entry: its ``label`` (tables, run folders), the runner's ``task`` and its data options."""

    label: str
    task: str
    data: DataOptions = field(default_factory=DataOptions)

    @property
    def folder(self) -> str:
        return re.sub(r"[^\w.=+-]+", "_", self.label)


def parse_task(text: str, glue_dir: Path | None, text_columns: list[str] | None, label_column: str) -> BenchTask:
    """The bench task ``text`` names (GLUE by name, else ``KIND:SOURCE``); one clear error for anything else."""
    from gelora.data import GLUE_TASKS, task_spec

    kind, colon, source = text.strip().partition(":")
    if not colon:
        return BenchTask(task_spec(kind).name, f"glue/{task_spec(kind).name}")
    if kind == "glue":
        return parse_task(source, glue_dir, text_columns, label_column)
    if kind not in KINDS or not source:
        raise GeloraError(
            f"--tasks entry {text!r}: use a GLUE task ({', '.join(GLUE_TASKS)}) or KIND:SOURCE with KIND one of "
            f"{', '.join(KINDS)} (e.g. sft:gsm8k, qa:squad_v2, classify:reviews.csv)"
        )
    preset = PRESETS.get(source)
    data, options = source, {}
    if preset is not None:
        local = glue_dir.parent / source if glue_dir is not None else None
        data = str(local) if local is not None and local.is_dir() else preset["hub"]
        options = preset["options"] | ({"data_config": preset["config"]} if data == preset["hub"] else {})
    task = "squad_v2" if kind == "qa" and source == "squad_v2" else "squad" if kind == "qa" and source == "squad" \
        else kind
    if kind == "classify":
        options |= {"text_columns": text_columns or ["text"], "label_column": label_column}
    return BenchTask(f"{kind}:{source}", task, DataOptions(data=data, **options))
