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
