"""Rank selection from singular values: the relative tolerance rule and the optional global budget."""

from __future__ import annotations

import torch


def tolerance_rank(sigma: torch.Tensor, tau: float, r_min: int, r_max: int) -> int:
    """Smallest ``r`` with ``||sigma[r:]|| < tau * ||sigma||``, clamped to ``[r_min, r_max]``.

    ``sigma`` is sorted in decreasing order. An all-zero ``sigma`` gives ``r_min``; ``tau = 0``
    keeps every nonzero singular value.
    """
    squares = sigma.double() ** 2
    total = squares.sum().sqrt()
    if total == 0:
        return r_min
    # tail[j] = ||sigma[j:]|| for j = 0 .. len(sigma); the last entry is 0, so some j qualifies.
    tail = torch.cat([squares.flip(0).cumsum(0).flip(0), squares.new_zeros(1)]).sqrt()
    rank = int(torch.nonzero((tail < tau * total) | (tail == 0))[0])
    return min(max(rank, r_min), r_max)


def budget_ranks(sigmas: dict[str, torch.Tensor], ranks: dict[str, int], budget: int, r_min: int) -> dict[str, int]:
    """Cut ``ranks`` to a total of ``budget`` by keeping the largest singular values over all layers.

    Every layer keeps at least ``r_min``, or all of its rank where that is smaller (a layer narrower than ``r_min``);
    beyond that, the ``budget - sum(floors)`` largest of the remaining candidate values (``sigma[floor:rank]`` of
    each layer) survive, so no layer exceeds its own ``ranks`` entry.
    """
    if sum(ranks.values()) <= budget:
        return dict(ranks)
    names = list(ranks)
    floors = [min(r_min, ranks[name]) for name in names]
    values, owners = [], []
    for i, name in enumerate(names):
        candidates = sigmas[name][floors[i] : ranks[name]].detach().float().cpu()
        values.append(candidates)
        owners.append(torch.full((candidates.numel(),), i))
    values, owners = torch.cat(values), torch.cat(owners)
    keep = max(budget - sum(floors), 0)
    kept = owners[torch.argsort(values, descending=True, stable=True)[:keep]]
    counts = torch.bincount(kept, minlength=len(names))
    return {name: floors[i] + int(counts[i]) for i, name in enumerate(names)}
