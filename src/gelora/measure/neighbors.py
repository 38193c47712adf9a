"""Exact k-nearest-neighbour distances without an N x N matrix.

Two passes per chunk of query rows: a float32 matmul pass (``|q|^2 + |x|^2 - 2 q.x``) ranks every point and keeps a
few more candidates than needed, then the distances to those candidates are recomputed exactly, as norms of
differences in the input's own precision. The expansion formula loses digits for close pairs (catastrophic
cancellation), so it is trusted only to *rank*, on centred data (a large common offset, as hidden states often
have, would otherwise swamp float32); the margin of extra candidates absorbs its rounding.
"""

from __future__ import annotations

import torch

# Elements of the (chunk x N) float32 score block, and of the (chunk x candidates x D) difference block.
_SCORE_BLOCK = 1 << 26
_DIFF_BLOCK = 1 << 25


def nearest_neighbor_distances(
    X: torch.Tensor, k: int = 2, *, margin: int | None = None, chunk_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and indices of the ``k`` nearest neighbours of every row of ``X``, self excluded.

    Parameters
    ----------
    X : torch.Tensor of shape (n_points, n_features)
        Floating-point points, on any device. Distances come back in ``X``'s dtype and on its device.
    k : int
        Number of neighbours, ``1 <= k < n_points``.
    margin : int, optional
        Extra candidates kept from the float32 ranking pass (default ``max(8, k // 4)``).
    chunk_size : int, optional
        Query rows per block (default: sized so the score block holds about 64M floats).

    Returns
    -------
    distances : torch.Tensor of shape (n_points, k), sorted ascending
    indices : torch.Tensor of shape (n_points, k), int64

    Notes
    -----
    Self-matches are excluded by index, not by distance, so an exact duplicate of a point is its neighbour at
    distance 0 (TwoNN then drops it with a warning).
    """
    n = X.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"need 1 <= k < n_points, got k={k} with {n} points")
    m = min(n - 1, k + (margin if margin is not None else max(8, k // 4)))
    ranking = (X - X.mean(dim=0)).float()
    sq_norms = ranking.pow(2).sum(dim=1)
    if chunk_size is None:
        chunk_size = max(1, min(n, _SCORE_BLOCK // n))

    out_d = torch.empty((n, k), dtype=X.dtype, device=X.device)
    out_i = torch.empty((n, k), dtype=torch.long, device=X.device)
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        rows = torch.arange(start, stop, device=X.device)
        # |q|^2 is a per-row constant: dropping it leaves the ranking of each row unchanged.
        scores = torch.addmm(sq_norms.unsqueeze(0), ranking[start:stop], ranking.T, alpha=-2.0)
        scores[rows - start, rows] = float("inf")
        candidates = scores.topk(m, dim=1, largest=False, sorted=False).indices
        del scores
        exact = _exact_distances(X, rows, candidates)
        exact, order = exact.topk(k, dim=1, largest=False, sorted=True)
        out_d[start:stop] = exact
        out_i[start:stop] = candidates.gather(1, order)
    return out_d, out_i


def _exact_distances(X: torch.Tensor, rows: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Norms of differences between ``X[rows]`` and ``X[candidates]``, in sub-blocks to bound memory."""
    m, d = candidates.shape[1], X.shape[1]
    step = max(1, _DIFF_BLOCK // max(1, m * d))
    parts = []
    for s in range(0, len(rows), step):
        q = X[rows[s : s + step]].unsqueeze(1)
        parts.append(torch.linalg.vector_norm(X[candidates[s : s + step]] - q, dim=-1))
    return torch.cat(parts)
