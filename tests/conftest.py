import logging
import os
import warnings
from pathlib import Path

import pytest
import torch
from helpers import make_glue_dir, make_sft_folder, make_tiny_model

from gelora.logs import LIBRARIES

GLUE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue"

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    path = Path(os.environ.get("GELORA_DATA_DIR", GLUE_DIR))
    if not path.is_dir():
        pytest.skip(f"GLUE data folder {path} not present")
    return path


@pytest.fixture(scope="session")
def tokenizer():
    """The MiniLM tokenizer (offline), shared by the tiny models of every family."""
    from gelora.models import load_tokenizer

    return load_tokenizer("minilm")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, str]:
    """A saved tiny random BERT and toy GLUE folders (read-only: tests write their runs elsewhere)."""
    root = tmp_path_factory.mktemp("tiny")
    return {"model": str(make_tiny_model(root / "model")), "data_dir": str(make_glue_dir(root / "glue"))}


@pytest.fixture(scope="session")
def chat_model(tmp_path_factory) -> dict[str, str]:
    """A saved tiny random Llama with a chat-template tokenizer, and question/answer files (GSM8K's columns)."""
    return make_sft_folder(tmp_path_factory.mktemp("sft"))


@pytest.fixture(autouse=True)
def one_thread_per_test():
    """One torch thread per test: tiny tensors gain nothing from more, and the CPU is shared (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def cli_output_restored():
    """Undo what an in-process ``gelora.cli.main`` call does to quiet the libraries (environment, logger levels,
    warning format), so later tests, and the subprocesses they start with this environment, see the defaults."""
    environ = dict(os.environ)
    levels = {name: logging.getLogger(name).level for name in LIBRARIES}
    formatwarning = warnings.formatwarning
    yield
    os.environ.clear()
    os.environ.update(environ)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    warnings.formatwarning = formatwarning
