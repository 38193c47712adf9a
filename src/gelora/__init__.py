"""gelora: LoRA ranks from the geometry of the model (GeLoRA) and rank-adaptive geometric LoRA (GeoLoRA).

``import gelora`` is light: the estimators (and torch, scipy under them) load on first use of an attribute.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gelora.errors import GeloraError

if TYPE_CHECKING:
    from gelora.measure import Gride, IDEstimate, TwoNN, estimate, gride, twonn

__version__ = "0.1.0"
_FROM_MEASURE = ("Gride", "IDEstimate", "TwoNN", "estimate", "gride", "twonn")
__all__ = ["GeloraError", *_FROM_MEASURE, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _FROM_MEASURE:
        return getattr(importlib.import_module("gelora.measure"), name)
    raise AttributeError(f"module 'gelora' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
