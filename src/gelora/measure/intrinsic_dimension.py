"""Intrinsic-dimension estimators: TwoNN (Facco et al. 2017) and GRIDE (Denti et al. 2022).

The expensive part, nearest-neighbour distances, runs in torch on the input's device (see ``neighbors``). The fits
work on N small ratios and run in float64 numpy/scipy. Conventions follow the reference libraries exactly, so the
numbers agree with ``skdim.id.TwoNN`` (scikit-dimension 0.5) and DADApy's ``return_id_scaling_gride``:

* TwoNN: mu_i = r2/r1; keep the ``int(N (1 - discard_fraction))`` smallest ratios; ``linear`` fits
  ``-log(1 - i/N) = d log mu_(i)`` through the origin (i = 1..k); ``mle`` is the unbiased Type-II-censored
  maximum-likelihood estimate ``(k - 1) / (sum_{i<=k} log mu_(i) + (N - k) log mu_(k))``.
* GRIDE: at scale n1 = 2^j, mu = r_{2 n1} / r_{n1}; the ID maximises the likelihood of the generalised ratio
  distribution after DADApy's outlier filter (mu >= q50 + 20 (q95 - q50) dropped).

Both estimate from the *distinct* points: a repeated point counts once (as after DADApy's
``remove_identical_points``; scikit-dimension instead drops every copy's ratio and keeps the copies as neighbours).
Data whose squared distances would overflow or underflow in their dtype are first scaled by a power of two, which
is exact and leaves every ratio unchanged, so an estimate does not depend on the units.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import brentq
from sklearn.base import BaseEstimator

from gelora.errors import GeloraError
from gelora.measure.neighbors import nearest_neighbor_distances
from gelora.options import MIN_BOOTSTRAP

ESTIMATORS = ("twonn", "gride")
MIN_DISTINCT_POINTS = 3  # two neighbours per point: the least either estimator can use
TRUSTED_POINTS = 20  # fewer distinct points get a warning: a relative standard error above ~20%
GRIDE_RANGE = (1e-3, 1e3)  # where GRIDE's maximum-likelihood ID is searched
_FILTER_COLUMNS = 8  # columns that narrow down the candidates for repeated rows before whole rows are compared


@dataclass(frozen=True)
class IDEstimate:
    """One intrinsic-dimension estimate.

    Attributes
    ----------
    dimension : float
        Point estimate.
    ci_low, ci_high : float or None
        Bootstrap percentile interval (None when no bootstrap was run).
    n_points : int
        Points given. ``n_used`` is how many entered the fit (repeated copies and discarded ratios removed).
    estimator : str
        ``"twonn"`` or ``"gride"``, with its settings in ``params``.
    x, y : numpy.ndarray
        The fitted curve, for plots: TwoNN gives (log mu, -log(1 - F(mu))); GRIDE gives (mean neighbour distance
        at each scale, ID at that scale).
    """

    dimension: float
    n_points: int
    n_used: int
    estimator: str
    params: dict = field(default_factory=dict)
    ci_low: float | None = None
    ci_high: float | None = None
    x: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    y: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)


def as_points(X, *, min_points: int = MIN_DISTINCT_POINTS) -> torch.Tensor:
    """Validate a point cloud and return it as a 2-D floating tensor (float64 stays float64, the rest float32)."""
    if isinstance(X, torch.Tensor):
        t = X.detach()
    else:
        try:
            arr = np.asarray(X)
        except (TypeError, ValueError) as e:
            raise GeloraError(f"points must be a numeric 2-D array; could not read them as one ({e})") from None
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise GeloraError(
                f"points must be numeric, got dtype {arr.dtype}; convert them to a float array (n_points, n_features)"
            )
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise GeloraError("points must be real-valued, got a complex array")
    if t.ndim != 2:
        hint = "; reshape a single feature with X.reshape(-1, 1)" if t.ndim == 1 else ""
        raise GeloraError(f"expected a 2-D array of points x features, got shape {tuple(t.shape)}{hint}")
    if t.dtype != torch.float64:
        t = t.float()
    if t.shape[0] < min_points:
        raise GeloraError(f"need at least {min_points} points to estimate an intrinsic dimension, got {t.shape[0]}")
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise GeloraError(f"{bad} point(s) contain NaN or inf; remove or impute them before estimating")
    return t


def _unit_scaled(X: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``X`` times 2^-e, with e the binary exponent of max |X|, when squared distances in ``X``'s dtype could
    overflow or lose their smallest differences to underflow; else ``X`` itself (no copy) and e = 0.

    The ratios both estimators fit are scale-free and a power of two scales exactly, so only the distances' units
    change (by 2^e).
    """
    span = max(float(X.amax()), -float(X.amin()))
    if span == 0:
        return X, 0
    info = np.finfo(np.float64 if X.dtype == torch.float64 else np.float32)
    e = math.frexp(span)[1]  # span in [2^(e-1), 2^e)
    # Squares of the differences (up to (2 span)^2 D) stay finite, and those of differences one ulp of span apart
    # stay normal.
    fits = 2 * e + math.log2(16 * X.shape[1]) < info.maxexp and 2 * (e - info.nmant) > info.minexp + info.nmant
    if fits:
        return X, 0
    half = -e // 2  # two factors: 2^-e alone can exceed the dtype's range (float32 data at 1e-40 need 2^133)
    return X * math.ldexp(1.0, half) * math.ldexp(1.0, -e - half), e


def _first_copies(X: torch.Tensor) -> torch.Tensor | None:
    """A mask keeping the first of each set of identical rows of ``X``, or None when every row is distinct.

    Identical rows agree in every column, so a few of the most variable columns narrow the candidates down cheaply
    (no copy of ``X``); only the rows left are compared whole. ``+ 0.0`` turns -0.0 into 0.0: the two are at
    distance 0 from each other, but different to ``torch.unique``.
    """
    rows = torch.arange(X.shape[0], device=X.device)
    for column in X.var(dim=0).topk(min(_FILTER_COLUMNS, X.shape[1])).indices:
        _, group, counts = torch.unique(X[rows, column] + 0.0, return_inverse=True, return_counts=True)
        rows = rows[counts[group] > 1]
        if len(rows) == 0:
            return None
    _, group = torch.unique(X[rows] + 0.0, dim=0, return_inverse=True)
    n_groups = int(group.max()) + 1
    if n_groups == len(rows):
        return None
    order = torch.arange(len(rows), device=X.device)
    first = torch.full((n_groups,), len(rows), device=X.device).scatter_reduce(0, group, order, "amin")
    keep = torch.ones(X.shape[0], dtype=torch.bool, device=X.device)
    keep[rows] = False
    keep[rows[first]] = True
    return keep


def _distinct_neighbours(X: torch.Tensor, k_for: Callable[[int], int]) -> tuple[np.ndarray, int]:
    """Distances (float64, scaled by 2^-e) from each distinct point of ``X`` to its ``k_for(n_distinct)`` nearest
    distinct points, and e.

    A repeated point counts once, as after DADApy's ``remove_identical_points``: dropping every copy (or keeping
    them all) changes the neighbourhoods of the points around them.
    """
    n = X.shape[0]
    keep = _first_copies(X)
    if keep is not None:
        X = X[keep]
        warnings.warn(f"dropped {n - X.shape[0]} repeated copies of points; estimating from the {X.shape[0]} "
                      "distinct points", stacklevel=4)
    m = X.shape[0]
    if m < MIN_DISTINCT_POINTS:
        raise GeloraError(
            f"only {m} distinct point(s) among {n}; an intrinsic dimension needs at least {MIN_DISTINCT_POINTS}"
        )
    if m < TRUSTED_POINTS:
        warnings.warn(
            f"only {m} distinct points: estimates from fewer than {TRUSTED_POINTS} are unreliable (relative "
            f"standard error about 1/sqrt(N) = {m**-0.5:.0%}); use more points",
            stacklevel=4,
        )
    X, exponent = _unit_scaled(X)
    dist, _ = nearest_neighbor_distances(X, k=k_for(m))
    if bool((dist[:, 0] == 0).any()):
        raise GeloraError(
            f"some of the {m} distinct points lie closer together than {X.dtype} can measure (distance 0); "
            "rescale the coordinates that differ by so little, or convert the points to float64"
        )
    return dist.double().cpu().numpy(), exponent


# --------------------------------------------------------------------------------------------------- TwoNN


def _twonn_fit(mu: np.ndarray, discard_fraction: float, method: str) -> tuple[float, np.ndarray, np.ndarray]:
    n = len(mu)
    k = int(n * (1 - discard_fraction))
    if k < 2:
        raise GeloraError(f"only {k} ratio(s) left after discarding {discard_fraction:.0%} of {n}; use more points")
    log_mu = np.log(np.sort(mu)[:k])
    y = -np.log1p(-np.arange(1, k + 1) / n)
    if method == "linear" and k == n:  # discard_fraction=0: F(mu_(N)) = 1 puts the last point at infinity
        log_mu, y = log_mu[:-1], y[:-1]  # (skdim returns inf)
    if log_mu[-1] == 0:  # every kept ratio is 1: no spread to fit, both fits divide by zero
        raise GeloraError(
            "every point kept has its two nearest neighbours at the same distance (r2/r1 = 1, e.g. a regular grid); "
            "TwoNN cannot fit that: add a little noise, discard fewer ratios, or use the gride estimator"
        )
    if method == "mle":
        d = (k - 1) / (log_mu.sum() + (n - k) * log_mu[-1])
    else:
        d = log_mu @ y / (log_mu @ log_mu)
    return float(d), log_mu, y


class TwoNN(BaseEstimator):
    """TwoNN intrinsic-dimension estimator (Facco et al. 2017), a scikit-learn estimator (``get_params``,
    ``set_params``, ``sklearn.base.clone``).

    Parameters
    ----------
    discard_fraction : float, default=0.1
        Fraction of the largest ratios mu = r2/r1 left out of the fit (the paper's heuristic), in [0, 1).
    method : {"linear", "mle"}, default="linear"
        Least-squares line through the origin (the paper) or censored maximum likelihood.

    Attributes
    ----------
    dimension_ : float
        The estimate.
    result_ : IDEstimate
        The estimate with its fitted curve.
    mu_ : numpy.ndarray of shape (n_distinct,)
        Per-point ratios r2/r1 of the distinct points (what a bootstrap resamples).

    Examples
    --------
    >>> import torch
    >>> X = torch.randn(2000, 5, dtype=torch.float64) @ torch.randn(5, 100, dtype=torch.float64)
    >>> round(TwoNN().fit(X).dimension_)
    5
    """

    def __init__(self, discard_fraction: float = 0.1, method: str = "linear"):
        self.discard_fraction = discard_fraction
        self.method = method

    def _check_params(self) -> None:
        if self.method not in ("linear", "mle"):
            raise GeloraError(f"unknown TwoNN method {self.method!r}; choose 'linear' or 'mle'")
        if not 0 <= self.discard_fraction < 1:
            raise GeloraError(f"discard_fraction must be in [0, 1), got {self.discard_fraction}")

    def fit(self, X, y=None) -> "TwoNN":
        """Estimate the dimension of ``X`` (n_points, n_features); ``y`` is ignored (scikit-learn's signature)."""
        self._check_params()
        X = as_points(X)
        r, _ = _distinct_neighbours(X, lambda n: 2)
        self.mu_ = r[:, 1] / r[:, 0]
        d, x, y = _twonn_fit(self.mu_, self.discard_fraction, self.method)
        self.dimension_ = d
        self.result_ = IDEstimate(
            dimension=d,
            n_points=X.shape[0],
            n_used=len(x),
            estimator="twonn",
            params=self.get_params(),
            x=x,
            y=y,
        )
        return self

    def refit(self, mu: np.ndarray) -> float:
        """Dimension from given ratios (a bootstrap resample of ``mu_``); NaN when they cannot be fitted."""
        try:
            return _twonn_fit(mu, self.discard_fraction, self.method)[0]
        except GeloraError:
            return math.nan


# --------------------------------------------------------------------------------------------------- GRIDE


def _filter_gride_ratios(mu: np.ndarray) -> np.ndarray:
    """DADApy's filter: ties nudged above 1, and ratios beyond q50 + 20 (q95 - q50) (overlapping points) dropped."""
    mu = np.where(mu == 1, mu + 10 * np.finfo(np.float64).eps, mu)
    q95, q50 = np.percentile(mu, [95, 50])
    return mu[mu < 20 * (q95 - q50) + q50]


def _gride_dloglik(d: float, log_mu: np.ndarray, n1: int, n2: int, eps: float = 1e-7) -> float:
    """Negative derivative of the GRIDE log-likelihood in d (its root is the estimate)."""
    one_minus = np.maximum(1.0 - np.exp(-d * log_mu), 2 * eps)
    return float(np.sum(((1 - n2 + n1) / one_minus + n2 - 1.0) * log_mu) - (len(log_mu) - 1) / d)


def _gride_fit(mu: np.ndarray, n1: int, d_range: tuple[float, float] = GRIDE_RANGE) -> tuple[float, float]:
    """ID and standard error at scale ``n1``; NaN for both when fewer than 2 ratios pass the filter (all equal,
    for one) or the likelihood has no maximum inside ``d_range``."""
    mu = _filter_gride_ratios(mu)
    if len(mu) < 2:
        return math.nan, math.nan
    log_mu = np.log(mu)
    n2 = 2 * n1
    lo, hi = d_range
    if _gride_dloglik(lo, log_mu, n1, n2) * _gride_dloglik(hi, log_mu, n1, n2) > 0:
        return math.nan, math.nan
    d = brentq(_gride_dloglik, lo, hi, args=(log_mu, n1, n2), xtol=1e-10, rtol=1e-12)
    # Fisher information for the standard error, as DADApy does.
    one_minus = np.maximum(1.0 - mu ** (-d), 5 * np.finfo(np.float64).eps)
    info = len(mu) / d**2 + np.sum((n2 - n1 - 1) * (log_mu / one_minus) ** 2 * mu ** (-d))
    return float(d), float(info**-0.5)


class Gride(BaseEstimator):
    """GRIDE multiscale intrinsic-dimension estimator (Denti et al. 2022), a scikit-learn estimator
    (``get_params``, ``set_params``, ``sklearn.base.clone``).

    Parameters
    ----------
    range_max : int, default=64
        Largest neighbour rank used, at least 2; scales are n1 = 1, 2, 4, ..., with n2 = 2 n1 <= range_max.

    Attributes
    ----------
    dimensions_ : numpy.ndarray
        ID at each scale (coarser scales are more robust to noise, finer ones see more curvature); NaN at a scale
        whose likelihood has no maximum in [1e-3, 1e3].
    errors_ : numpy.ndarray
        Standard errors from the Fisher information.
    scales_ : numpy.ndarray
        Mean distance of the neighbours involved at each scale (DADApy's ``rs_scaling``).
    ranks_ : numpy.ndarray
        The n2 rank of each scale.
    dimension_ : float
        ID at the coarsest scale (the one ``estimate`` reports).
    result_ : IDEstimate
        ``dimension_`` with the curve: ``x`` = ``scales_``, ``y`` = ``dimensions_``.
    mu_ : numpy.ndarray of shape (n_distinct, n_scales)
        Per-point ratios r_{n2} / r_{n1} of the distinct points at each scale (what a bootstrap resamples).
    """

    def __init__(self, range_max: int = 64):
        self.range_max = range_max

    def _check_params(self) -> None:
        if not isinstance(self.range_max, (int, np.integer)) or self.range_max < 2:
            raise GeloraError(f"range_max must be an integer of at least 2, got {self.range_max!r}")

    def fit(self, X, y=None) -> "Gride":
        """Estimate the dimension of ``X`` (n_points, n_features) at every scale; ``y`` is ignored."""
        self._check_params()
        X = as_points(X)
        r, exponent = _distinct_neighbours(X, lambda n: _largest_scale(n, self.range_max))
        steps = 2 ** np.arange(int(math.log2(r.shape[1])) + 1)  # 1, 2, 4, ..., k
        near, far = r[:, steps[:-1] - 1], r[:, steps[1:] - 1]
        self.mu_ = far / near
        fits = [_gride_fit(self.mu_[:, j], int(steps[j])) for j in range(self.mu_.shape[1])]
        self.dimensions_ = np.array([f[0] for f in fits])
        self.errors_ = np.array([f[1] for f in fits])
        self.scales_ = np.ldexp((near.mean(axis=0) + far.mean(axis=0)) / 2, exponent)  # back to the input's units
        self.ranks_ = steps[1:]
        self.dimension_ = float(self.dimensions_[-1])
        if math.isnan(self.dimension_):
            raise GeloraError(
                f"GRIDE's likelihood at the coarsest scale (n2 = {self.ranks_[-1]}) has no maximum in "
                f"[{GRIDE_RANGE[0]:g}, {GRIDE_RANGE[1]:g}] ({len(r)} distinct points, ratios all (almost) equal); "
                "use more points or the twonn estimator"
            )
        self.result_ = IDEstimate(
            dimension=self.dimension_,
            n_points=X.shape[0],
            n_used=len(r),
            estimator="gride",
            params=self.get_params(),
            x=self.scales_,
            y=self.dimensions_,
        )
        return self

    def refit(self, mu: np.ndarray) -> float:
        """Coarsest-scale dimension from given ratio rows (a bootstrap resample of ``mu_``); NaN when they have no
        maximum-likelihood estimate."""
        return _gride_fit(mu[:, -1], int(self.ranks_[-1] // 2))[0]


def _largest_scale(n: int, range_max: int) -> int:
    """The largest power of two at most ``range_max`` and below ``n`` (the neighbours a point has)."""
    return 1 << int(math.log2(min(n - 1, range_max)))


# --------------------------------------------------------------------------------------------------- API


def twonn(X, discard_fraction: float = 0.1, method: str = "linear") -> IDEstimate:
    """TwoNN intrinsic dimension of a point cloud (Facco et al. 2017); see :class:`TwoNN`.

    Parameters
    ----------
    X : array-like or torch.Tensor of shape (n_points, n_features)
        Real numbers, finite. A tensor stays on its device for the neighbour search; float64 stays float64,
        anything else is computed in float32. Repeated rows count once.
    discard_fraction : float, default=0.1
        Fraction of the largest ratios mu = r2/r1 left out of the fit, in [0, 1).
    method : {"linear", "mle"}, default="linear"
        Least-squares line through the origin (the paper), or censored maximum likelihood.

    Returns
    -------
    IDEstimate
        ``dimension``, ``estimator="twonn"``, the settings in ``params``, ``n_used`` = ratios fitted, and the
        fitted curve ``x`` = log mu, ``y`` = -log(1 - F(mu)); no interval (``ci_low``/``ci_high`` None: use
        :func:`estimate` for one).

    Raises
    ------
    GeloraError
        An unknown ``method`` or ``discard_fraction`` outside [0, 1) (before any search); points that are not a
        finite real 2-D array; fewer than 3 distinct points; distinct points at distance 0 in the working dtype;
        fewer than 2 ratios left after discarding; or every kept ratio equal to 1 (e.g. a regular grid).

    Warns
    -----
    UserWarning
        When repeated rows are dropped, and when fewer than 20 distinct points remain (unreliable estimate).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 3)) @ rng.normal(size=(3, 50))  # a 3-D subspace of R^50
    >>> round(twonn(X).dimension)
    3
    """
    return TwoNN(discard_fraction, method).fit(X).result_


def gride(X, range_max: int = 64) -> IDEstimate:
    """GRIDE multiscale intrinsic dimension of a point cloud (Denti et al. 2022); see :class:`Gride`.

    Parameters
    ----------
    X : array-like or torch.Tensor of shape (n_points, n_features)
        As for :func:`twonn`.
    range_max : int, default=64
        Largest neighbour rank n2 used, at least 2. The scales are n1 = 1, 2, 4, ... with n2 = 2 n1, up to the
        largest power of two at most ``range_max`` and below the number of distinct points (the default gives six
        scales from 65 distinct points on).

    Returns
    -------
    IDEstimate
        ``dimension`` = the ID at the coarsest scale, ``estimator="gride"``, ``n_used`` = distinct points, and the
        curve ``x`` = mean neighbour distance at each scale (in the units of ``X``), ``y`` = the ID at each
        scale (NaN where the likelihood has no maximum in [1e-3, 1e3]); no interval (use :func:`estimate`).

    Raises
    ------
    GeloraError
        ``range_max`` not an integer of at least 2 (before any search); points that are not a finite real 2-D
        array; fewer than 3 distinct points; distinct points at distance 0 in the working dtype; or no
        likelihood maximum at the coarsest scale (ratios all about equal).

    Warns
    -----
    UserWarning
        As :func:`twonn` does.

    Examples
    --------
    Four scales (n2 = 2, 4, 8, 16) on a 4-D subspace:

    >>> from numpy.random import default_rng
    >>> A, B = default_rng(1).normal(size=(500, 4)), default_rng(2).normal(size=(4, 20))
    >>> result = gride(A @ B, range_max=16)
    >>> len(result.y), round(result.dimension)
    (4, 4)
    """
    return Gride(range_max).fit(X).result_


def make_estimator(estimator: str, **params) -> TwoNN | Gride:
    """An unfitted estimator by name, its settings checked now (before any expensive work)."""
    if estimator not in ESTIMATORS:
        raise GeloraError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    cls = TwoNN if estimator == "twonn" else Gride
    try:
        est = cls(**params)
    except TypeError:
        names = ", ".join(cls().get_params())
        raise GeloraError(f"{estimator} takes the settings {names}; got {', '.join(params)}") from None
    est._check_params()
    return est


def check_bootstrap(n_bootstrap: int, seed: int, confidence: float = 0.95) -> None:
    """Raise ``GeloraError`` unless ``n_bootstrap`` is 0 (no interval) or at least ``MIN_BOOTSTRAP``, ``seed`` is a
    non-negative integer and ``0 < confidence < 1``."""
    if not isinstance(n_bootstrap, (int, np.integer)) or not (n_bootstrap == 0 or n_bootstrap >= MIN_BOOTSTRAP):
        raise GeloraError(
            f"bootstrap resamples must be 0 (no interval) or at least {MIN_BOOTSTRAP} (fewer make the interval's "
            f"ends the most extreme draws), got {n_bootstrap!r}"
        )
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GeloraError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0 < confidence < 1:
        raise GeloraError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")


def estimate(
    X,
    estimator: str = "twonn",
    *,
    n_bootstrap: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    **params,
) -> IDEstimate:
    """Point estimate with a bootstrap percentile interval.

    Neighbour distances are computed once; the bootstrap resamples the per-point ratios with replacement and
    refits. (Resampling the *points* would create exact duplicates, which TwoNN cannot use.) The same seed gives
    the same interval.

    Parameters
    ----------
    X : array-like or torch.Tensor of shape (n_points, n_features)
    estimator : {"twonn", "gride"}
    n_bootstrap : int
        Resamples: 0 skips the interval, else at least ``MIN_BOOTSTRAP`` (20; fewer make the interval's ends the
        extreme draws).
    confidence : float
        Coverage of the percentile interval.
    seed : int
        Non-negative.
    **params
        Passed to the estimator (``discard_fraction``, ``method``, ``range_max``).

    Raises
    ------
    GeloraError
        Bad settings (before any search), too few distinct points, ratios no fit can use, or resamples that cannot
        be fitted (too few distinct ratios for an interval).
    """
    check_bootstrap(n_bootstrap, seed, confidence)
    est = make_estimator(estimator, **params).fit(X)
    result = est.result_
    if n_bootstrap == 0:
        return result
    rng = np.random.default_rng(seed)
    n = len(est.mu_)
    draws = np.array([est.refit(est.mu_[rng.integers(0, n, n)]) for _ in range(n_bootstrap)])
    failed = int(np.isnan(draws).sum())
    if failed:
        raise GeloraError(
            f"{failed} of {n_bootstrap} bootstrap resamples of the {n} ratios could not be fitted (too few distinct "
            "ratios for an interval); use more points, or no interval (bootstrap 0)"
        )
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return IDEstimate(**{**result.__dict__, "ci_low": float(low), "ci_high": float(high)})
