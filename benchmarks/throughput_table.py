"""Markdown rows of training throughput from ``gelora train`` output folders: ``throughput_table.py LABEL=DIR ...``.

Throughput is global samples per second of the median optimizer step (per-process batch x processes / median
step seconds), which leaves out model loading, evaluation and checkpoints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(label: str, out: Path) -> str:
    m = json.loads((out / "metrics.json").read_text())
    processes, batch = m["num_processes"], m["config"]["batch_size"]
    step = m["median_step_seconds"]
    return (
        f"| {label} | {processes} | {batch} x {processes} = {batch * processes} | {step:.3f} | "
        f"{batch * processes / step:.1f} | {m['wall_seconds']:.0f} | {m['final'][m['metric']]:.3f} |"
    )


def main(specs: list[str]) -> None:
    print("| run | processes | global batch | median step s | samples/s | wall s | final metric |")
    print("|---|---|---|---|---|---|---|")
    for spec in specs:
        label, _, folder = spec.partition("=")
        print(row(label, Path(folder)))


if __name__ == "__main__":
    main(sys.argv[1:])
