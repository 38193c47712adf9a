"""Measure the geometry: nearest neighbours, intrinsic-dimension estimators, hidden-state collection.

Attributes load their module (and torch) on first use, so ``import gelora`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gelora.measure.hidden_states import POOLINGS, collect_hidden_states
    from gelora.measure.intrinsic_dimension import (
        ESTIMATORS, Gride, IDEstimate, TwoNN, as_points, estimate, gride, twonn,
    )
    from gelora.measure.neighbors import nearest_neighbor_distances

# attribute -> the submodule that defines it
_SOURCES = {
    **dict.fromkeys(
        ("ESTIMATORS", "Gride", "IDEstimate", "TwoNN", "as_points", "estimate", "gride", "twonn"), "intrinsic_dimension"
    ),
    **dict.fromkeys(("POOLINGS", "collect_hidden_states"), "hidden_states"),
    "nearest_neighbor_distances": "neighbors",
}
__all__ = sorted(_SOURCES)


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module 'gelora.measure' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gelora.measure.{_SOURCES[name]}"), name)


def __dir__() -> list[str]:
    return __all__
