"""gelora leaves the user's process alone: a light import, no global logging or matplotlib state changed by the
library, and a command line that shows gelora's output and hides the libraries' chatter unless ``--verbose``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gelora.cli import build_parser

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
HEAVY = ("torch", "scipy", "transformers", "sklearn", "matplotlib")


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with gelora and the test helpers importable."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)]), "OMP_NUM_THREADS": "1"} | (env or {})
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_import_is_light_and_leaves_logging_alone():
    code = f"""
import json, logging, os, sys, warnings
import gelora
heavy = [m for m in {HEAVY!r} if m in sys.modules]
import numpy as np, scipy.optimize, sklearn, torch  # these set warning filters (sklearn: KMP_* variables)
# of their own when imported: not gelora's doing
from gelora.logs import LIBRARIES
def state():
    return [dict(os.environ), [str(f) for f in warnings.filters], [logging.getLogger(n).level for n in LIBRARIES],
            warnings.formatwarning.__module__]
before = state()
estimate = gelora.twonn(np.random.default_rng(0).normal(size=(400, 3)))
from gelora.cli import build_parser
build_parser()
print(json.dumps({{"heavy": heavy, "id": estimate.dimension, "same": state() == before}}))
"""
    out = json.loads(run_python(code).stdout)
    assert out["heavy"] == []
    assert 2.5 < out["id"] < 3.5  # and the lazy attribute works: TwoNN of a 3-d Gaussian
    assert out["same"]  # the Python API changed no environment variable, warning filter or logger level


def test_plots_keep_the_backend_and_never_import_pyplot():
    code = """
import json, sys, tempfile
from pathlib import Path
import matplotlib
from helpers import tiny_model
from gelora.bench.report import write_pareto
from gelora.plan import plan_ranks
from gelora.plots import plot_plan, plot_profile, plot_profiles, plot_rank_history
from gelora.profile import BoundaryID, Profile

backend = matplotlib.get_backend()
bounds = [BoundaryID(i, f"h{i}", 2.0 + 3 * i, 1.5 + 3 * i, 2.5 + 3 * i, 50) for i in range(3)]
profile = Profile("tiny", {"task": "toy"}, "tokens", "twonn", 0, 50, bounds, bootstrap=10)
row = {"task": "rte", "method": "lora", "seed": 0, "score": 0.6, "secondary": None, "trainable_params": 10,
       "median_step_seconds": 1.0, "wall_seconds": 5.0, "plan_seconds": 0.0, "status": "ok"}
out = Path(tempfile.mkdtemp())
plot_profile(profile, out / "a.png")
plot_profiles([profile, profile], ["x", "y"], out / "b.png")
plot_plan(plan_ranks(profile, tiny_model("bert")), profile, out / "c.png")
plot_rank_history([{"step": s, "ranks": {"m": 4 - s}, "total_rank": 4 - s} for s in range(3)], out / "d.png")
write_pareto(out / "e.png", [row], ["rte"])
sizes = [(out / f"{n}.png").stat().st_size for n in "abcde"]
print(json.dumps({"before": backend, "after": matplotlib.get_backend(), "pyplot": "matplotlib.pyplot" in sys.modules,
                  "sizes": sizes}))
"""
    out = json.loads(run_python(code, {"MPLBACKEND": "svg"}).stdout)
    assert out["before"] == out["after"] == "svg"  # a notebook's backend is not switched to Agg
    assert not out["pyplot"]
    assert min(out["sizes"]) > 1000  # every figure was drawn


def test_cli_output_hides_library_warnings_but_not_gelora_ones():
    code = """
import warnings
import numpy as np
from gelora.logs import configure_cli_output, warn_once
from gelora.measure import twonn

def chatter(text):
    warnings.warn_explicit(text, FutureWarning, "transformers/modeling_utils.py", 1, module="transformers.modeling_utils")

configure_cli_output(verbose=True)
chatter("verbose chatter")
configure_cli_output()
chatter("quiet chatter")
points = np.random.default_rng(0).normal(size=(60, 3))
twonn(np.concatenate([points, points[:5]]))  # duplicates: gelora's own warning
for _ in range(2):
    warn_once("the classifier head is newly initialised: expected before fine-tuning")
"""
    err = run_python(code).stderr
    assert "verbose chatter" in err and "quiet chatter" not in err
    assert "repeated copies" in err
    assert err.count("gelora: warning: the classifier head is newly initialised") == 1


@pytest.mark.parametrize("argv", [["--verbose", "id", "x.npy"], ["id", "--verbose", "x.npy"], ["id", "x.npy"]])
def test_verbose_before_or_after_the_command(argv):
    assert build_parser().parse_args(argv).verbose == ("--verbose" in argv)


# the verbose run only shows that the quiet one could fail: it goes to the slow tier
@pytest.mark.parametrize("verbose", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_gelora_train_is_quiet_unless_verbose(tiny, tmp_path, verbose):
    """The real CLI on the tiny model: no load report, FutureWarning or datasets bar; all of them with --verbose."""
    argv = [
        sys.executable, "-m", "gelora", *(["--verbose"] if verbose else []), "train", tiny["model"],
        "--task", "glue/rte", "--data-dir", tiny["data_dir"], "--method", "lora", "--rank", "2",
        "--max-steps", "1", "--batch-size", "4", "--max-length", "16", "--max-train-samples", "8",
        "--max-eval-samples", "8", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    # a cache of its own, so that datasets really generates the splits (and would show its bars)
    env = os.environ | {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    if verbose:
        assert "LOAD REPORT" in done.stderr and "Generating train split" in done.stderr  # (others vary by version)
    else:
        chatter = ("LOAD REPORT", "FutureWarning", "Generating train split", "Loading weights")
        assert [c for c in chatter if c in done.stderr] == []
        assert "lora glue/rte" in done.stderr  # gelora's own progress bar stays
