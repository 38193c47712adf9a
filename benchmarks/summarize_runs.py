"""Mean ± std over seeds of finished ``gelora train`` runs laid out as ``ROOT/<task>/<method>/seed<S>/metrics.json``.

Usage: python benchmarks/summarize_runs.py ROOT   (prints a markdown table: final score, trainable params, step time)
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def main(root: str) -> None:
    cells = defaultdict(list)
    for path in sorted(Path(root).glob("*/*/seed*/metrics.json")):
        task, method = path.parts[-4], path.parts[-3]
        cells[task, method].append(json.loads(path.read_text()))
    print("| task | method | n | final score (mean ± std) | trainable params | median step s | wall s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (task, method), runs in sorted(cells.items()):
        metric = runs[0]["metric"]
        scores = [r["final"][metric] for r in runs]
        spread = f" ± {statistics.stdev(scores):.4f}" if len(scores) > 1 else ""
        print(f"| {task} ({metric}) | {method} | {len(runs)} | {statistics.fmean(scores):.4f}{spread} "
              f"| {runs[0]['trainable_params']:,} | {statistics.fmean(r['median_step_seconds'] for r in runs):.2f} "
              f"| {statistics.fmean(r['wall_seconds'] for r in runs):.0f} |")


if __name__ == "__main__":
    main(sys.argv[1])
