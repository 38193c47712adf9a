import os
from pathlib import Path

import pytest
import torch

GLUE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue"

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    path = Path(os.environ.get("GELORA_DATA_DIR", GLUE_DIR))
    if not path.is_dir():
        pytest.skip(f"GLUE data folder {path} not present")
    return path


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread for a module of tiny-tensor tests (more threads only add contention on a shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
