"""gelora: LoRA ranks from the geometry of the model (GeLoRA) and rank-adaptive geometric LoRA (GeoLoRA)."""

from gelora.errors import GeloraError

__version__ = "0.1.0"
__all__ = ["GeloraError", "Gride", "IDEstimate", "TwoNN", "estimate", "gride", "twonn", "__version__"]

_FROM_MEASURE = {"Gride", "IDEstimate", "TwoNN", "estimate", "gride", "twonn"}


def __getattr__(name: str):
    # The estimators pull in torch, scipy and scikit-learn: loaded on first use, so `import gelora` stays cheap.
    if name in _FROM_MEASURE:
        from gelora import measure

        return getattr(measure, name)
    raise AttributeError(f"module 'gelora' has no attribute {name!r}")
