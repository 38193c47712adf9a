"""``gelora id FILE``: intrinsic dimension of a point cloud stored as .npy, .pt or .csv."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gelora.errors import GeloraError
from gelora.measure import ESTIMATORS, estimate


def register(sub, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="estimate the intrinsic dimension of a point cloud (.npy, .pt, .csv)")
    p.add_argument("file", help="points as rows: .npy, .pt (a 2-D tensor) or .csv (numeric, optional header)")
    p.add_argument("--estimator", choices=ESTIMATORS, default="twonn", help="estimator (default: twonn)")
    p.add_argument("--method", choices=("linear", "mle"), default="linear", help="TwoNN fit (default: linear)")
    p.add_argument("--discard-fraction", type=float, default=0.1, help="TwoNN: largest ratios left out (0.1)")
    p.add_argument("--range-max", type=int, default=64, help="GRIDE: largest neighbour rank (64)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the interval (200; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (0)")
    p.add_argument("--device", default="cpu", help="torch device for the neighbour search (cpu), e.g. cuda")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def load_points(path: str):
    """Read a point cloud from .npy, .pt or .csv."""
    import torch

    file = Path(path)
    if not file.exists():
        raise GeloraError(f"file {path!r} does not exist")
    suffix = file.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(file, allow_pickle=False)
        if suffix in (".pt", ".pth"):
            obj = torch.load(file, map_location="cpu", weights_only=True)
            if not isinstance(obj, torch.Tensor):
                raise GeloraError(f"{path!r} holds a {type(obj).__name__}, not a tensor; save a 2-D tensor")
            return obj
        if suffix == ".csv":
            return _load_csv(file)
    except GeloraError:
        raise
    except Exception as e:
        raise GeloraError(f"could not read {path!r}: {e}") from None
    raise GeloraError(f"unsupported file type {suffix!r}; use .npy, .pt or .csv")


def _load_csv(file: Path) -> np.ndarray:
    with open(file, encoding="utf-8") as f:
        first = f.readline()
    try:
        [float(v) for v in first.strip().split(",")]
        skip = 0
    except ValueError:
        skip = 1  # a header row
    try:
        data = np.loadtxt(file, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64)
    except ValueError as e:
        raise GeloraError(f"{file} is not a numeric CSV ({e})") from None
    return data


def run(args: argparse.Namespace) -> int:
    import torch

    from gelora.measure.hidden_states import resolve_device

    device = resolve_device(args.device)
    X = load_points(args.file)
    X = torch.as_tensor(X).to(device) if device.type != "cpu" else X
    params = (
        {"discard_fraction": args.discard_fraction, "method": args.method}
        if args.estimator == "twonn"
        else {"range_max": args.range_max}
    )
    r = estimate(X, args.estimator, n_bootstrap=args.bootstrap, seed=args.seed, **params)
    if args.json:
        print(json.dumps({k: v for k, v in r.__dict__.items() if k not in ("x", "y")}, indent=2))
        return 0
    ci = f"  95% CI [{r.ci_low:.2f}, {r.ci_high:.2f}]" if r.ci_low is not None else ""
    print(f"{args.estimator}: intrinsic dimension {r.dimension:.3f}{ci}  ({r.n_used} of {r.n_points} points used)")
    return 0
