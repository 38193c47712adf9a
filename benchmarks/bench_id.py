"""gelora's TwoNN vs scikit-dimension's and DADApy's on the same data, side by side.

    python benchmarks/bench_id.py                     # the full grid (CPU; CUDA too when available)
    python benchmarks/bench_id.py --sizes 2000,10000 --dims 768 --repeats 3
    python benchmarks/bench_id.py --points rte_block2.npy   # a stored point cloud (see dump_hidden_states.py)
    python benchmarks/bench_id.py --shapes 10000x768,100000x4096 --refs skdim --cpu-max-points 10000   # GPU check

Data: points on a random 20-dimensional linear subspace plus small isotropic noise, float64 (or the ``--points``
file, cast to float64). Each library gets the same array; times are the best of ``--repeats`` wall-clock runs,
ratios are reference time / gelora time. "gelora, full ranking" times the neighbour search alone with the
principal-subspace ranking switched off, to show what that ranking contributes on each data set.
References that would take longer than ``--max-ref-points`` points are skipped (skdim 0.5 sorts every row of the
full distance matrix: O(N^2 log N)); ``--cpu-max-points`` likewise skips gelora's CPU columns above that size.

On CUDA the table adds gelora on the GPU (end to end, and the neighbour search with the full ranking) and the
**GEMM floor**: the time the N^2 D / 2 multiply-adds of the upper triangle of X X^T (what the full ranking
computes) take at the rate a dense bfloat16 (rows x D) (D x N) product reaches on that GPU, with float32
accumulation as the ranking uses. No exact all-pairs search can beat it; "full / floor" is how far the search is
from it.
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


def cuda_seconds(fn, warmup: int = 3, repeats: int = 10) -> float:
    """Median seconds of ``fn`` on the current CUDA device, timed with events after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return sorted(times)[len(times) // 2]


def gemm_floor(X: torch.Tensor, rows: int = 8192) -> float:
    """Seconds of the upper triangle of ``X X^T`` (N^2 / 2 dot products of length D) in bfloat16 on X's GPU.

    Timed on one dense (rows x D) (D x N) product and scaled by the number of dot products; reduced-precision bf16
    reductions are off, as in gelora's ranking (its certificate assumes float32 accumulation).
    """
    n = X.shape[0]
    Xb = X.to(torch.bfloat16)
    block = Xb[: min(n, rows)]
    settings = torch.backends.cuda.matmul
    saved, settings.allow_bf16_reduced_precision_reduction = settings.allow_bf16_reduced_precision_reduction, False
    try:
        seconds = cuda_seconds(lambda: torch.mm(block, Xb.T))
    finally:
        settings.allow_bf16_reduced_precision_reduction = saved
    return seconds * (n * n / 2) / (len(block) * n)


def make_points(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(d, 20)))
    return rng.normal(size=(n, 20)) @ basis.T + 0.01 * rng.normal(size=(n, d))


def skdim_twonn(X: np.ndarray) -> float:
    import skdim

    return skdim.id.TwoNN().fit(X).dimension_


def dadapy_twonn(X: np.ndarray) -> float:
    from dadapy import Data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Data(coordinates=X, maxk=3, verbose=False).compute_id_2NN(mu_fraction=0.9)[0]


REFERENCES = {"skdim": skdim_twonn, "dadapy": dadapy_twonn}


def references(names: str) -> dict:
    """The reference estimators named in ``names`` (comma-separated; empty for none)."""
    chosen = [n for n in names.split(",") if n]
    unknown = sorted(set(chosen) - set(REFERENCES))
    if unknown:
        raise SystemExit(f"--refs: unknown {', '.join(unknown)}; choose from {', '.join(REFERENCES)}")
    return {n: REFERENCES[n] for n in chosen}


def shapes(args: argparse.Namespace) -> list[tuple[int, int]]:
    """``--shapes 10000x768,...`` or the ``--sizes`` x ``--dims`` grid."""
    if args.shapes:
        return [tuple(int(v) for v in shape.lower().split("x")) for shape in args.shapes.split(",")]
    return [(n, d) for n in map(int, args.sizes.split(",")) for d in map(int, args.dims.split(","))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2000,10000,50000")
    ap.add_argument("--dims", default="384,768,4096")
    ap.add_argument("--shapes", help="NxD pairs instead of the --sizes x --dims grid, e.g. 10000x768,100000x4096")
    ap.add_argument("--points", help="a .npy / .pt / .csv point cloud to use instead of the synthetic grid")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-ref-points", type=int, default=10000)
    ap.add_argument("--refs", default="skdim,dadapy", help="reference estimators, comma-separated (empty: none)")
    ap.add_argument("--cpu-max-points", type=int, help="skip gelora's CPU columns above this many points")
    args = ap.parse_args()

    refs = references(args.refs)
    limits = {"ref": args.max_ref_points, "cpu": args.cpu_max_points or float("inf")}
    cuda = torch.cuda.is_available()
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
          + (f", {torch.cuda.get_device_name()}" if cuda else ", no CUDA"))
    columns = ["N", "D", "gelora CPU s", "gelora, full ranking s"]
    columns += ["gelora CUDA s", "CUDA full ranking s", "GEMM floor s", "full / floor"] if cuda else []
    columns += [c for r in refs for c in (f"{r} s", f"{r}/gelora")] + ["ID gelora"] + [f"ID {r}" for r in refs]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    if args.points:
        clouds = [np.asarray(load_points(args.points), dtype=np.float64)]
    else:
        clouds = (make_points(n, d) for n, d in shapes(args))
    for X in clouds:
        print(row(X, refs, limits, args.repeats, cuda), flush=True)


def row(X: np.ndarray, refs: dict, limits: dict, repeats: int, cuda: bool) -> str:
    n, d = X.shape
    Xt = torch.from_numpy(X)
    cells, ours, t_cpu, t_gpu = [str(n), str(d)], None, None, None
    if n <= limits["cpu"]:
        t_cpu, ours = best_time(lambda: twonn(X).dimension, repeats)
        t_full, _ = best_time(lambda: nearest_neighbor_distances(Xt, 2, subspace=False), repeats)
        cells += [f"{t_cpu:.2f}", f"{t_full:.2f}"]
    else:
        cells += ["skipped", "skipped"]
    if cuda:
        Xg = Xt.cuda()
        twonn(Xg)  # warm-up
        t_gpu, ours = best_time(lambda: twonn(Xg).dimension, repeats)
        t_gfull, _ = best_time(lambda: nearest_neighbor_distances(Xg, 2, subspace=False), repeats)
        floor = gemm_floor(Xg)
        cells += [f"{t_gpu:.3f}", f"{t_gfull:.3f}", f"{floor:.4f}", f"{t_gfull / floor:.1f}x"]
    ids = []
    for fn in refs.values():
        if n > limits["ref"]:
            cells += ["skipped", "-"]
            ids.append("-")
            continue
        t_ref, value = best_time(lambda: fn(X), 1 if n * d > 5e7 else repeats)  # best of the same repeats
        ratios = [f"{t_ref / t_cpu:.1f}x" if t_cpu else ""] + ([f"CUDA {t_ref / t_gpu:.0f}x"] if t_gpu else [])
        cells += [f"{t_ref:.2f}", " ".join(r for r in ratios if r) or "-"]
        ids.append(f"{value:.6f}")
    return "| " + " | ".join(cells + [f"{ours:.6f}" if ours is not None else "-"] + ids) + " |"


if __name__ == "__main__":
    main()
