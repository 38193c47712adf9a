"""Measure the geometry: nearest neighbours, intrinsic-dimension estimators, hidden-state collection."""

from gelora.measure.intrinsic_dimension import (
    ESTIMATORS,
    Gride,
    IDEstimate,
    TwoNN,
    as_points,
    estimate,
    gride,
    twonn,
)
from gelora.measure.neighbors import nearest_neighbor_distances

__all__ = [
    "ESTIMATORS",
    "Gride",
    "IDEstimate",
    "TwoNN",
    "as_points",
    "estimate",
    "gride",
    "nearest_neighbor_distances",
    "twonn",
]
