"""``gelora id FILE``: intrinsic dimension of a point cloud stored as .npy, .pt or .csv."""

from __future__ import annotations

import argparse
import json
import math

from gelora.measure import ESTIMATORS, estimate
from gelora.measure.intrinsic_dimension import MIN_BOOTSTRAP, check_bootstrap, make_estimator
from gelora.utils import load_points, resolve_device


def register(sub, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="estimate the intrinsic dimension of a point cloud (.npy, .pt, .csv)")
    p.add_argument("file", help="points as rows: .npy, .pt (a 2-D tensor) or .csv (numeric, optional header)")
    p.add_argument("--estimator", choices=ESTIMATORS, default="twonn", help="estimator (default: twonn)")
    p.add_argument("--method", choices=("linear", "mle"), default="linear", help="TwoNN fit (default: linear)")
    p.add_argument("--discard-fraction", type=float, default=0.1, help="TwoNN: largest ratios left out (0.1)")
    p.add_argument("--range-max", type=int, default=64, help="GRIDE: largest neighbour rank (64)")
    p.add_argument(
        "--bootstrap", type=int, default=200,
        help=f"bootstrap resamples for the 95%% interval: 0 (none) or at least {MIN_BOOTSTRAP} (200)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap, non-negative (0)")
    p.add_argument("--device", default="cpu", help="torch device for the neighbour search, e.g. cuda (cpu)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (null where undefined)")
    return p


def _json_safe(value):
    """``value`` with every non-finite float replaced by None: JSON has no NaN or Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def run(args: argparse.Namespace) -> int:
    import torch

    params = (
        {"discard_fraction": args.discard_fraction, "method": args.method}
        if args.estimator == "twonn"
        else {"range_max": args.range_max}
    )
    make_estimator(args.estimator, **params)  # bad settings fail before the file is read
    check_bootstrap(args.bootstrap, args.seed)
    device = resolve_device(args.device)
    X = load_points(args.file)
    X = torch.as_tensor(X).to(device) if device.type != "cpu" else X
    r = estimate(X, args.estimator, n_bootstrap=args.bootstrap, seed=args.seed, **params)
    if args.json:
        fields = {k: v for k, v in r.__dict__.items() if k not in ("x", "y")}
        print(json.dumps(_json_safe(fields), indent=2, allow_nan=False))
        return 0
    ci = f"  95% CI [{r.ci_low:.2f}, {r.ci_high:.2f}]" if r.ci_low is not None else ""
    print(f"{args.estimator}: intrinsic dimension {r.dimension:.3f}{ci}  ({r.n_used} of {r.n_points} points used)")
    return 0
