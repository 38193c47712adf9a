"""gelora's TwoNN vs scikit-dimension's and DADApy's on the same data, side by side.

    python benchmarks/bench_id.py                     # the full grid (CPU; CUDA too when available)
    python benchmarks/bench_id.py --sizes 2000,10000 --dims 768 --repeats 3
    python benchmarks/bench_id.py --points rte_block2.npy   # a stored point cloud (see dump_hidden_states.py)

Data: points on a random 20-dimensional linear subspace plus small isotropic noise, float64 (or the ``--points``
file, cast to float64). Each library gets the same array; times are the best of ``--repeats`` wall-clock runs,
ratios are reference time / gelora time. "gelora, full ranking" times the neighbour search alone with the
principal-subspace ranking switched off, to show what that ranking contributes on each data set.
References that would take longer than ``--max-ref-points`` points are skipped (skdim 0.5 sorts every row of the
full distance matrix: O(N^2 log N)).
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import torch

from gelora import twonn
from gelora.measure import nearest_neighbor_distances
from gelora.utils import load_points


def best_time(fn, repeats: int) -> tuple[float, float]:
    best, value = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        value = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, value


def make_points(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(d, 20)))
    return rng.normal(size=(n, 20)) @ basis.T + 0.01 * rng.normal(size=(n, d))


def references(max_ref_points: int):
    import skdim
    from dadapy import Data

    def dadapy_2nn(X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Data(coordinates=X, maxk=3, verbose=False).compute_id_2NN(mu_fraction=0.9)[0]

    return {"skdim": lambda X: skdim.id.TwoNN().fit(X).dimension_, "dadapy": dadapy_2nn}, max_ref_points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2000,10000,50000")
    ap.add_argument("--dims", default="384,768,4096")
    ap.add_argument("--points", help="a .npy / .pt / .csv point cloud to use instead of the synthetic grid")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-ref-points", type=int, default=10000)
    args = ap.parse_args()

    refs, max_ref = references(args.max_ref_points)
    cuda = torch.cuda.is_available()
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
          + (f", {torch.cuda.get_device_name()}" if cuda else ", no CUDA"))
    header = "| N | D | gelora CPU s | gelora, full ranking s | " + ("gelora CUDA s | " if cuda else "")
    header += " | ".join(f"{r} s | {r}/gelora" for r in refs) + " | ID gelora | " + " | ".join(f"ID {r}" for r in refs) + " |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    if args.points:
        clouds = [np.asarray(load_points(args.points), dtype=np.float64)]
    else:
        clouds = (make_points(n, d) for n in map(int, args.sizes.split(",")) for d in map(int, args.dims.split(",")))
    for X in clouds:
        print(row(X, refs, max_ref, args.repeats, cuda), flush=True)


def row(X: np.ndarray, refs: dict, max_ref: int, repeats: int, cuda: bool) -> str:
    n, d = X.shape
    t_cpu, ours = best_time(lambda: twonn(X).dimension, repeats)
    Xt = torch.from_numpy(X)
    t_full, _ = best_time(lambda: nearest_neighbor_distances(Xt, 2, subspace=False), repeats)
    cells = [str(n), str(d), f"{t_cpu:.2f}", f"{t_full:.2f}"]
    if cuda:
        Xg = Xt.cuda()
        twonn(Xg)  # warm-up
        t_gpu, _ = best_time(lambda: twonn(Xg).dimension, repeats)
        cells.append(f"{t_gpu:.3f}")
    ids = []
    for fn in refs.values():
        if n > max_ref:
            cells += ["skipped", "-"]
            ids.append("-")
            continue
        t_ref, value = best_time(lambda: fn(X), 1 if n * d > 5e7 else repeats)  # best of the same repeats
        cells += [f"{t_ref:.2f}", f"{t_ref / t_cpu:.1f}x" + (f" (CUDA {t_ref / t_gpu:.0f}x)" if cuda else "")]
        ids.append(f"{value:.6f}")
    return "| " + " | ".join(cells + [f"{ours:.6f}"] + ids) + " |"


if __name__ == "__main__":
    main()
