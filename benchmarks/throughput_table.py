"""Markdown rows of training throughput from ``gelora train`` output folders: ``throughput_table.py LABEL=DIR ...``.

Throughput is global samples per second of the median optimizer step (per-process batch x processes / median
step seconds), which leaves out model loading, evaluation and checkpoints. For packed SFT runs (``--packing``)
every sample is a block of exactly ``--max-length`` token positions, so the table adds token positions per second
(padding left in the blocks included); for other runs that column is "-".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(label: str, out: Path) -> str:
    m = json.loads((out / "metrics.json").read_text())
    config = m["config"]
    processes, batch = m["num_processes"], config["batch_size"]
    step = m["median_step_seconds"]
    samples_s = batch * processes / step
    packed = config.get("data_options", {}).get("packing", False)
    tokens_s = f"{samples_s * config['max_length']:,.0f}" if packed else "-"
    return (
        f"| {label} | {processes} | {batch} x {processes} = {batch * processes} | {step:.3f} | "
        f"{samples_s:.1f} | {tokens_s} | {m['peak_memory_mb'] / 1024:.1f} | {m['wall_seconds']:.0f} | "
        f"{m['final'][m['metric']]:.3f} |"
    )


def main(specs: list[str]) -> None:
    print("| run | processes | global batch | median step s | samples/s | tokens/s | peak memory GiB | wall s | final metric |")
    print("|---|---|---|---|---|---|---|---|---|")
    for spec in specs:
        label, _, folder = spec.partition("=")
        print(row(label, Path(folder)))


if __name__ == "__main__":
    main(sys.argv[1:])
