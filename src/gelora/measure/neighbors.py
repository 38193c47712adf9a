"""Exact k-nearest-neighbour distances without an N x N matrix: rank cheaply, recompute, certify.

1. **Rank.** For a block of rows at a time, one low-precision matmul against all points gives squared distances
   ``|x|^2 + |y|^2 - 2 x.y`` on centred data scaled to norms <= 1 (rows augmented with their squared norms, so
   the matmul returns the scores with no elementwise pass); each row keeps its ``k + margin`` lowest scores.
   bfloat16 where the hardware multiplies it fast (3.4x float32 on this CPU's AVX512-BF16), float32 elsewhere.
   Over all rows, only the upper triangle of the score matrix is computed, each block serving rows and columns.
2. **Recompute** the distances to those candidates exactly, as norms of differences in the input's precision, and
   keep the ``k`` nearest.
3. **Certify** every row. The rounding of the inputs, of the matmul's float32 accumulation and of its output is
   bounded per row (``_Scorer.bound``): no point nearer than the k-th distance found can score above that bound.
   When the row's last candidate scored above it, no point outside the candidates is nearer, and the k distances
   are exact. Rows that fail (ties at the k-th distance, e.g. duplicated tokens) are rescored, and *every* point
   under the bound is recomputed: exact by the same argument, with no threshold to beat.

Data close to a linear subspace (top principal components holding >= 99% of the variance) are first ranked in
``[P^T x, |x - P P^T x|]``, p + 1 coordinates instead of D: distances there are lower bounds of the true ones,
so the same certificate holds, and the rows it cannot certify are ranked again in full.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

# Elements of one (rows x N) score block: rows per block = _SCORE_BLOCK // N (fastest on 2 CPU cores at N = 10k-16k).
_SCORE_BLOCK = 1 << 24
_DIFF_BLOCK = 1 << 18  # (rows x candidates x D) differences: small enough to stay in cache
_U = 2.0**-24  # unit roundoff of float32, the matmul's accumulator
_EPS64 = 2.0**-52
_TINY = 2.0**-126  # smallest normal float32 / bfloat16: bf16 dot-product units flush anything below it to zero
_SYMMETRIC_MIN_WIDTH = 256  # score columns from which walking only the upper triangle pays (see _ranked_pass)
# Subspace ranking: principal components from this many sampled rows, tried when p components keep at least this
# share of the variance, p + 1 <= D / 4 and p <= N / _PCA_POINTS_PER_COMPONENT. The last keeps the float64 projection
# (N D p) cheap next to the full ranking (N^2 D); measured on 2 CPU cores (bench_id.py, 20-dim subspace + noise):
# a loss at N = 2,000 (p = 21) and at 10,000 x 4,096 (p = 186), a gain at 10,000 x 768 (p = 20) and at 50,000 x 4,096.
_PCA_SAMPLE, _PCA_VARIANCE, _PCA_POINTS_PER_COMPONENT = 512, 0.99, 150


@dataclass(frozen=True)
class _Precision:
    """A ranking dtype and its unit roundoff (inputs and matmul output; accumulation is float32 either way)."""

    dtype: torch.dtype
    unit: float


_BFLOAT16 = _Precision(torch.bfloat16, 2.0**-8)
_FLOAT32 = _Precision(torch.float32, _U)


@contextlib.contextmanager
def _full_precision_matmul():
    """float32 matmuls in full float32 ("highest": no TF32 on CUDA, no bf16 on CPU oneDNN) and, on CUDA, no
    reduced-precision bf16 reductions: the certificate assumes float32 accumulation. These are process-wide
    settings, set once around the whole search and restored on exit (not safe against other threads changing them
    meanwhile)."""
    saved = torch.get_float32_matmul_precision()
    cuda = torch.backends.cuda.matmul
    saved_bf16 = cuda.allow_bf16_reduced_precision_reduction
    torch.set_float32_matmul_precision("highest")
    cuda.allow_bf16_reduced_precision_reduction = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved)
        cuda.allow_bf16_reduced_precision_reduction = saved_bf16


@_full_precision_matmul()
def nearest_neighbor_distances(
    X: torch.Tensor, k: int = 2, *, margin: int | None = None, precision: str = "auto", subspace: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and indices of the ``k`` nearest neighbours of every row of ``X``, self excluded.

    Parameters
    ----------
    X : torch.Tensor of shape (n_points, n_features)
        Floating-point points, on any device. Distances come back in ``X``'s dtype and on its device.
    k : int
        Number of neighbours, ``1 <= k < n_points``.
    margin : int, optional
        Extra candidates kept from the ranking pass (default ``max(8, k // 4)``). More candidates certify more rows
        at the first pass; the result is exact either way.
    precision : {"auto", "bfloat16", "float32"}
        Precision of the ranking matmuls. ``auto``: bfloat16 on CUDA and on CPUs with AVX512-BF16 or AMX, float32
        otherwise. Only the speed depends on it.
    subspace : bool
        Try the principal-subspace ranking first when the data are that close to a linear subspace. Only the speed
        depends on it.

    Returns
    -------
    distances : torch.Tensor of shape (n_points, k), sorted ascending
    indices : torch.Tensor of shape (n_points, k), int64

    Notes
    -----
    "Exact" means: the distances are norms of differences computed in ``X``'s dtype, as ``torch.cdist`` computes
    them without its matmul shortcut, and no nearer point exists at that precision. Self-matches are excluded by
    index, not by distance, so an exact duplicate of a point is its neighbour at distance 0 (the ID estimators
    then keep one copy, with a warning). Among points at exactly equal distance, which index is returned is
    unspecified; the distances are not. The squared differences must stay in ``X``'s range (the estimators
    rescale data at extreme scales by a power of two first): at |x| ~ 1e200 in float64 they overflow.
    """
    if X.ndim != 2 or not X.is_floating_point():
        raise ValueError(f"need a 2-D floating-point tensor of points, got {X.dtype} of shape {tuple(X.shape)}")
    span = max(float(X.amax()), -float(X.amin()))  # NaN propagates through both
    if not math.isfinite(span):
        raise ValueError("the points contain NaN or inf values; drop or fix those rows first")
    n = X.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"need 1 <= k < n_points, got k={k} with {n} points")
    m = min(n - 1, k + (margin if margin is not None else max(8, k // 4)))
    prec = _precision(precision, X.device)
    mean = X.mean(dim=0)
    out_d = torch.empty((n, k), dtype=X.dtype, device=X.device)
    out_i = torch.empty((n, k), dtype=torch.long, device=X.device)
    rows = torch.arange(n, device=X.device)
    basis = _principal_basis(X, mean) if subspace else None
    if basis is not None:
        rows = _ranked_pass(X, _Scorer(X, mean, span, prec, basis), rows, k, m, out_d, out_i)
        log.debug("subspace ranking (%d of %d coordinates) left %d of %d rows", basis.shape[1] + 1, X.shape[1],
                  len(rows), n)
    if len(rows):
        scorer = _Scorer(X, mean, span, prec)
        rows = _ranked_pass(X, scorer, rows, k, m, out_d, out_i)
        log.debug("%s ranking left %d of %d rows uncertified", prec.dtype, len(rows), n)
        if len(rows):
            _widened_pass(X, scorer, rows, k, out_d, out_i)
    return out_d, out_i


def _precision(precision: str, device: torch.device) -> _Precision:
    if precision == "auto":
        precision = "bfloat16" if _fast_bfloat16(device) else "float32"
    if precision in ("bfloat16", "float32"):
        return _BFLOAT16 if precision == "bfloat16" else _FLOAT32
    raise ValueError(f"unknown precision {precision!r}; choose 'auto', 'bfloat16' or 'float32'")


def _fast_bfloat16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:  # private, but the only place torch reports the ISA extensions (torch >= 2.3)
            caps = torch._C._cpu._get_cpu_capability()
        except AttributeError:
            return False
        return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
    return False


def _principal_basis(X: torch.Tensor, mean: torch.Tensor) -> torch.Tensor | None:
    """Orthonormal float64 basis (D x p) of the top principal components of a row sample, when p components hold
    >= 99% of its variance with p + 1 <= D / 4 and p <= N / _PCA_POINTS_PER_COMPONENT; else None. Any orthonormal
    basis keeps the ranking exact: this only decides whether the cheaper ranking is worth trying."""
    n, dim = X.shape
    if dim < 16:
        return None
    sample = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:_PCA_SAMPLE].to(X.device)
    S = (X[sample] - mean).double()
    S32 = S.float()  # the spectrum only steers the choice: a float32 Gram (s x s, cheaper than D x D) is enough
    evals, evecs = torch.linalg.eigh((S32 @ S32.T).double())
    evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
    share = evals.cumsum(0) / evals.sum().clamp_min(torch.finfo(torch.float64).tiny)
    p = int((share < _PCA_VARIANCE).sum()) + 1
    if p + 1 > dim // 4 or p > n / _PCA_POINTS_PER_COMPONENT or evals[p - 1] <= 0:
        return None
    basis, _ = torch.linalg.qr(S.T @ evecs[:, :p])
    return basis


class _Scorer:
    """Scores ``left[i] . right[j]``, the squared distance between rounded vectors x_i and x_j: the centred rows (or
    their subspace coordinates ``[P^T v, |v - P P^T v|]``) times ``scale``, a power of two that puts every norm at
    or below 1 (exact, and no overflow or loss to the float32 range in the scores), with what the certificate
    needs to know about them.

    ``left = [x, s_hi, s_lo, 1, 1]``, ``right = [-2x, 1, 1, s_hi, s_lo]``, where s_hi + s_lo is |x|^2 as summed in
    float32 (the split keeps it to the dtype's precision squared); columns padded to a multiple of 32, which the
    matmul kernels prefer. ``span`` is max |X|. In float64 and scaled units: upper bounds of the ``norms`` of the
    unrounded vectors and of ``rounding`` (the norm of each row's rounding error), ``relative_rounding`` (the
    largest ratio of the two, over a lower bound of the norm), and ``slack``, a bound on how far ``|v_i - v_j|``
    can exceed ``|X_i - X_j|`` through the centring and projection arithmetic.
    """

    def __init__(
        self, X: torch.Tensor, mean: torch.Tensor, span: float, prec: _Precision, basis: torch.Tensor | None = None
    ):
        n, dim = X.shape
        self.prec = prec
        self.dim = dim if basis is None else basis.shape[1] + 1
        largest = span + max(float(mean.amax()), -float(mean.amin()))  # bounds every |X - mean| entry
        self.scale = math.ldexp(1.0, -math.frexp(largest * dim**0.5 * (1 + 1e-6))[1]) if largest > 0 else 1.0
        width = -(-(self.dim + 4) // 32) * 32
        self.left = torch.zeros((n, width), dtype=prec.dtype, device=X.device)
        self.right = torch.zeros((n, width), dtype=prec.dtype, device=X.device)
        self.norms = torch.empty(n, dtype=torch.float64, device=X.device)
        self.rounding = torch.empty(n, dtype=torch.float64, device=X.device)
        grow = 1 + (self.dim + 2) * torch.finfo(X.dtype if basis is None else torch.float64).eps / 2
        step = max(1, _SCORE_BLOCK // max(width, dim))
        for s in range(0, n, step):  # in chunks: no second full copy of X
            rows = slice(s, s + step)
            v = (X[rows] - mean).mul_(self.scale)
            if basis is not None:
                v = v.double()
                y = v @ basis
                v = torch.cat([y, torch.linalg.vector_norm(v - y @ basis.T, dim=1, keepdim=True)], dim=1)
            x = v.to(prec.dtype)
            sq = torch.linalg.vector_norm(x, dim=1, dtype=torch.float32).double().pow(2)  # to (dim + 2) U relative
            hi = sq.to(prec.dtype)
            lo = (sq - hi.double()).to(prec.dtype)
            one = torch.ones_like(hi)
            self.left[rows, : self.dim + 4] = torch.cat([x, torch.stack([hi, lo, one, one], dim=1)], dim=1)
            self.right[rows, : self.dim + 4] = torch.cat([-2 * x, torch.stack([one, one, hi, lo], dim=1)], dim=1)
            # Norms summed in v's dtype, rounded up past their summation error (v - x is exact: x is v with fewer
            # mantissa bits), so float32 input needs no float64 copy.
            self.norms[rows] = torch.linalg.vector_norm(v, dim=1).double() * grow
            self.rounding[rows] = torch.linalg.vector_norm(v - x.to(v.dtype), dim=1).double() * grow
        tiny = torch.finfo(torch.float64).tiny
        self.relative_rounding = float((self.rounding / (self.norms / grow**2).clamp_min(tiny)).max())
        self.slack = 4 * torch.finfo(X.dtype).eps * largest * dim**0.5 * self.scale
        if basis is not None:
            self.slack += 8 * _EPS64 * dim * float(self.norms.max())

    def scores(self, rows: torch.Tensor) -> torch.Tensor:
        """(len(rows) x N) scores, the self-matches set to +inf."""
        scores = torch.mm(self.left[rows], self.right.T)
        scores[torch.arange(len(rows), device=rows.device), rows] = float("inf")
        return scores

    def bound(self, rows: torch.Tensor, kth: torch.Tensor) -> torch.Tensor:
        """The highest score a point nearer than ``kth`` (in the input's units) to each row can have.

        Such a point j has |v_j| < far = |v_i| + kth + slack, and the rounded vectors are nearer than kth + reach
        (both rounding errors added). Its score is that squared distance, plus the error of the |x|^2 columns
        (a float32 sum of dim squares, then split in two), of the float32 accumulation over dim + 4 terms whose
        absolute sum is at most 2 (|x_i|^2 + |x_j|^2) (gamma_n = nU / (1 - nU)), and of subnormals flushed to
        zero (at most 2^-126 per input and product, all below 2 in size), rounded once to the output dtype.
        """
        kth = kth * self.scale
        norms, unit = self.norms[rows], self.prec.unit
        far = norms + kth + self.slack
        reach = self.rounding[rows] + self.relative_rounding * far + 2 * self.slack
        sq_sum = (norms + self.rounding[rows]).pow(2) + (far * (1 + self.relative_rounding)).pow(2)
        terms = 3 * (self.dim + 4) * _U
        relative = terms / (1 - terms) + unit**2
        return ((kth + reach).pow(2) + relative * sq_sum + 4 * (self.dim + 4) * _TINY) * (1 + unit)


def _kth_upper(X: torch.Tensor, kth: torch.Tensor) -> torch.Tensor:
    """The recomputed k-th distances, rounded up past their own rounding error."""
    return kth.double() * (1 + (X.shape[1] + 4) * torch.finfo(X.dtype).eps)


def _ranked_pass(
    X: torch.Tensor, scorer: _Scorer, rows: torch.Tensor, k: int, m: int, out_d: torch.Tensor, out_i: torch.Tensor
) -> torch.Tensor:
    """Rank, recompute and certify ``rows``; write their results and return the rows left uncertified."""
    n = X.shape[0]
    # The symmetric walk halves the matmuls but adds top-k merges: it pays only when the rows are wide (10k x 768:
    # 0.32 s vs 0.35 s in bfloat16, 0.69 s vs 1.06 s in float32; 22 subspace coordinates: 0.27 s vs 0.22 s).
    symmetric = len(rows) == n and scorer.left.shape[1] >= _SYMMETRIC_MIN_WIDTH
    top, cand = _all_candidates(scorer, m) if symmetric else _row_candidates(scorer, rows, m)
    out_d[rows], out_i[rows] = _recompute(X, rows, cand, k)
    if m == n - 1:
        return rows[:0]  # every other point is a candidate
    kth = _kth_upper(X, out_d[rows, -1])
    threshold = top.amax(dim=1).double()
    certified = (kth == 0) | (torch.isfinite(threshold) & (threshold > scorer.bound(rows, kth)))
    return rows[~certified]


def _row_candidates(scorer: _Scorer, rows: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``m`` lowest scores of each of ``rows`` and their columns (unsorted), a block of rows at a time."""
    top = torch.empty((len(rows), m), dtype=scorer.left.dtype, device=rows.device)
    cand = torch.empty((len(rows), m), dtype=torch.long, device=rows.device)
    step = max(1, _SCORE_BLOCK // scorer.left.shape[0])
    for s in range(0, len(rows), step):  # in place, for the reason given in _recompute
        block = scorer.scores(rows[s : s + step])
        top[s : s + step], cand[s : s + step] = block.topk(m, dim=1, largest=False, sorted=False)
    return top, cand


def _all_candidates(scorer: _Scorer, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """As ``_row_candidates`` for every row, walking the upper triangle of the score matrix: each block serves its
    rows and (transposed) its columns, for about half the matmul work (blocks of at least 2048 rows, below which
    the extra top-k merges cost more than they save on 2 CPU cores)."""
    n = scorer.left.shape[0]
    block = min(int(_SCORE_BLOCK**0.5), max(2048, -(-n // 8)))
    best = torch.full((n, m), float("inf"), dtype=scorer.left.dtype, device=scorer.left.device)
    best_i = torch.zeros((n, m), dtype=torch.long, device=scorer.left.device)
    for i0 in range(0, n, block):
        rows = torch.arange(i0, min(n, i0 + block), device=best.device)
        for j0 in range(i0, n, block):
            j1 = min(n, j0 + block)
            scores = torch.mm(scorer.left[i0 : i0 + block], scorer.right[j0:j1].T)
            if i0 == j0:
                scores.fill_diagonal_(float("inf"))
            _merge(best, best_i, rows, scores, j0, m)
            if i0 != j0:  # top-k over the rows of a contiguous copy: 3x faster than over the strided transpose
                _merge(best, best_i, torch.arange(j0, j1, device=best.device), scores.T.contiguous(), i0, m)
    return best, best_i


def _merge(
    best: torch.Tensor, best_i: torch.Tensor, rows: torch.Tensor, scores: torch.Tensor, col0: int, m: int
) -> None:
    """Fold the ``m`` lowest entries of each row of ``scores`` (columns offset by ``col0``) into the running best."""
    vals, idx = scores.topk(min(m, scores.shape[1]), dim=1, largest=False, sorted=False)
    vals = torch.cat([best[rows], vals], dim=1)
    idx = torch.cat([best_i[rows], idx + col0], dim=1)
    keep = vals.topk(m, dim=1, largest=False, sorted=False).indices
    best[rows] = vals.gather(1, keep)
    best_i[rows] = idx.gather(1, keep)


def _recompute(X: torch.Tensor, rows: torch.Tensor, cand: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact distances from ``rows`` to their candidates; the ``k`` nearest, sorted."""
    out_d = torch.empty((len(rows), k), dtype=X.dtype, device=X.device)
    out_i = torch.empty((len(rows), k), dtype=torch.long, device=X.device)
    # Written in place, not collected in a list: thousands of small kept tensors between the transient difference
    # blocks fragment the heap (12 GB of RSS at 100k x 4096).
    step = max(1, _DIFF_BLOCK // max(1, cand.shape[1] * X.shape[1]))
    for s in range(0, len(rows), step):
        c = cand[s : s + step]
        r = rows[s : s + step].unsqueeze(1)
        exact = torch.linalg.vector_norm(X[c] - X[r], dim=-1).masked_fill_(c == r, float("inf"))  # never self
        exact, order = exact.topk(k, dim=1, largest=False, sorted=True)
        out_d[s : s + step] = exact
        out_i[s : s + step] = c.gather(1, order)
    return out_d, out_i


def _widened_pass(
    X: torch.Tensor, scorer: _Scorer, rows: torch.Tensor, k: int, out_d: torch.Tensor, out_i: torch.Tensor
) -> None:
    """Exact k nearest of ``rows`` from every point scoring under the bound of their current k-th distance (an upper
    bound of the true one), so no nearer point is left out."""
    step = max(1, _SCORE_BLOCK // X.shape[0])
    for start in range(0, len(rows), step):
        r = rows[start : start + step]
        bound = scorer.bound(r, _kth_upper(X, out_d[r, -1])).float() * (1 + 2.0**-20)  # float32, rounded up
        close = scorer.scores(r).float() <= bound.unsqueeze(1)
        close |= ~torch.isfinite(bound).unsqueeze(1)
        close.scatter_(1, out_i[r], True)  # the current neighbours, so every row keeps at least k
        close[torch.arange(len(r), device=X.device), r] = False
        ri, ci = close.nonzero(as_tuple=True)
        chunk = max(1, _DIFF_BLOCK // X.shape[1])
        d = torch.cat([torch.linalg.vector_norm(X[ci[s : s + chunk]] - X[r[ri[s : s + chunk]]], dim=1)
                       for s in range(0, len(ci), chunk)])
        order = d.argsort(stable=True)  # by distance, then (stably) by row: each row's pairs nearest first
        order = order[ri[order].argsort(stable=True)]
        counts = torch.bincount(ri, minlength=len(r))
        take = (counts.cumsum(0) - counts).unsqueeze(1) + torch.arange(k, device=X.device)
        out_d[r], out_i[r] = d[order][take], ci[order][take]
