"""gelora: LoRA ranks from the geometry of the model (GeLoRA) and rank-adaptive geometric LoRA (GeoLoRA)."""

from gelora.errors import GeloraError
from gelora.measure import Gride, IDEstimate, TwoNN, estimate, gride, twonn

__version__ = "0.1.0"
__all__ = ["GeloraError", "Gride", "IDEstimate", "TwoNN", "estimate", "gride", "twonn", "__version__"]
