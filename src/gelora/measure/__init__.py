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
from gelora.measure.hidden_states import POOLINGS, collect_hidden_states
from gelora.measure.neighbors import nearest_neighbor_distances

__all__ = [
    "ESTIMATORS",
    "Gride",
    "IDEstimate",
    "POOLINGS",
    "TwoNN",
    "as_points",
    "collect_hidden_states",
    "estimate",
    "gride",
    "nearest_neighbor_distances",
    "twonn",
]
