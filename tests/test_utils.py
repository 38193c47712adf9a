"""gelora.utils: the device and point-file helpers, and a light ``import gelora``."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gelora import GeloraError
from gelora.utils import load_points, resolve_device

SRC = Path(__file__).resolve().parents[1] / "src"


def test_import_gelora_loads_neither_torch_nor_scipy():
    code = "import sys, gelora, gelora.utils; print(sorted({'torch', 'scipy', 'sklearn'} & set(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_estimators_still_import_from_gelora():
    from gelora import TwoNN, twonn

    assert twonn(np.random.default_rng(0).normal(size=(50, 2))).estimator == "twonn" and TwoNN().method == "linear"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import gelora

        gelora.nope


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(GeloraError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")


@pytest.mark.parametrize("suffix", [".npy", ".pt", ".csv"])
def test_load_points_round_trips(tmp_path, suffix):
    X = np.arange(12.0).reshape(4, 3)
    path = tmp_path / f"x{suffix}"
    {".npy": lambda: np.save(path, X), ".pt": lambda: torch.save(torch.from_numpy(X), path),
     ".csv": lambda: np.savetxt(path, X, delimiter=",", header="a,b,c", comments="")}[suffix]()
    np.testing.assert_array_equal(np.asarray(load_points(path)), X)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: (p / "x.csv").write_bytes(b"\xff\xfe\x00binary"), "not a numeric CSV"),
        (lambda p: torch.save({"a": torch.ones(2)}, p / "x.pt"), "holds a dict, not a tensor"),
        (lambda p: (p / "noext").write_text("1,2"), "unsupported file type '(none)'"),
    ],
)
def test_load_points_bad_files(tmp_path, make, message):
    make(tmp_path)
    (path,) = tmp_path.iterdir()
    with pytest.raises(GeloraError, match=message.replace("(", "\\(").replace(")", "\\)")):
        load_points(path)
