"""Save the hidden states of one layer boundary of a `gelora profile` run as .npy, for `bench_id.py --points`.

    PYTHONPATH=src GELORA_DATA_DIR=../shared/data/glue python benchmarks/dump_hidden_states.py \
        --task rte --num-samples 2000 --boundary 3 --out /tmp/rte_boundary3.npy

The texts and tokens are those `gelora profile minilm --task glue/<task> --num-samples N --seed S` uses
(tokens pooling, 8 per text), so the cloud is exactly one boundary of that profile.
"""

from __future__ import annotations

import argparse

import numpy as np

from gelora.data import load_task, task_spec, text_pairs
from gelora.io import atomic_write
from gelora.measure.hidden_states import collect_hidden_states
from gelora.models import load_backbone, load_tokenizer
from gelora.profile import sample_texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--task", default="rte")
    ap.add_argument("--num-samples", type=int, default=2000)
    ap.add_argument("--boundary", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    texts = text_pairs(load_task(f"glue/{args.task}")["train"], task_spec(args.task).text_columns)
    texts = sample_texts(texts, args.num_samples, args.seed)
    clouds = collect_hidden_states(load_backbone(args.model), load_tokenizer(args.model), texts, seed=args.seed)
    X = clouds[args.boundary].numpy()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a temporary name
            np.save(f, X)

    atomic_write(args.out, write)
    print(f"wrote {args.out}: {X.shape[0]} x {X.shape[1]} ({X.dtype})")


if __name__ == "__main__":
    main()
