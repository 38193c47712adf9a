"""Memory check of the ID engine at N=100,000 x D=4,096 (float32): peak RSS and wall time of one TwoNN fit.

    python benchmarks/bench_id_large.py [--n 100000] [--d 4096]

The input alone is N*D*4 bytes (1.6 GB); an N x N distance matrix would be 40 GB, beyond this 24 GB machine.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from gelora import twonn


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=4096)
    ap.add_argument("--intrinsic", type=int, default=32)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    X = torch.randn(args.n, args.intrinsic, generator=g) @ torch.randn(args.intrinsic, args.d, generator=g)
    X += 0.01 * torch.randn(args.n, args.d, generator=g)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t = time.perf_counter()
    r = twonn(X)
    elapsed = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"N={args.n} D={args.d} float32: ID {r.dimension:.3f}, {elapsed:.1f} s, "
        f"peak RSS {peak:.2f} GB (input + generation {before:.2f} GB), torch threads {torch.get_num_threads()}"
    )


if __name__ == "__main__":
    main()
