"""Every ``from X import Y`` the README shows (in its code blocks and in its prose) imports."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
IMPORT = re.compile(r"^\s*`?from ([\w.]+) import ([\w, ]+)", re.M)
STATEMENTS = sorted({(module, name.strip()) for module, names in IMPORT.findall(README.replace("`", "\n"))
                     for name in names.split(",") if name.strip()})


def test_the_readme_names_gelora_imports():
    assert {"gelora.train.runner", "gelora.train.config"} <= {module for module, _ in STATEMENTS}


@pytest.mark.parametrize(("module", "name"), [s for s in STATEMENTS if s[0].startswith("gelora")])
def test_readme_import_resolves(module, name):
    assert hasattr(importlib.import_module(module), name), f"README: from {module} import {name}"


def _resolve(dotted: str):
    """The object ``dotted`` names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("dotted", sorted(set(re.findall(r"`(gelora(?:\.\w+)+)`", README))))
def test_readme_dotted_name_resolves(dotted):
    assert _resolve(dotted) is not None
