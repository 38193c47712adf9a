"""Intrinsic-dimension estimators: TwoNN (Facco et al. 2017) and GRIDE (Denti et al. 2022).

The expensive part, nearest-neighbour distances, runs in torch on the input's device (see ``neighbors``). The fits
work on N small ratios and run in float64 numpy/scipy. Conventions follow the reference libraries exactly, so the
numbers agree with ``skdim.id.TwoNN`` (scikit-dimension 0.5) and DADApy's ``return_id_scaling_gride``:

* TwoNN: mu_i = r2/r1; keep the ``int(N (1 - discard_fraction))`` smallest ratios; ``linear`` fits
  ``-log(1 - i/N) = d log mu_(i)`` through the origin (i = 1..k); ``mle`` is the unbiased Type-II-censored
  maximum-likelihood estimate ``(k - 1) / (sum_{i<=k} log mu_(i) + (N - k) log mu_(k))``.
* GRIDE: at scale n1 = 2^j, mu = r_{2 n1} / r_{n1}; the ID maximises the likelihood of the generalised ratio
  distribution after DADApy's outlier filter (mu >= q50 + 20 (q95 - q50) dropped).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import brentq

from gelora.errors import GeloraError
from gelora.measure.neighbors import nearest_neighbor_distances

ESTIMATORS = ("twonn", "gride")


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
        Points given. ``n_used`` is how many entered the fit (duplicates and discarded ratios removed).
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


def as_points(X, *, min_points: int = 3) -> torch.Tensor:
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
        raise GeloraError(
            f"points must be a 2-D array (n_points, n_features), got shape {tuple(t.shape)}; "
            "reshape a single feature with X.reshape(-1, 1)"
        )
    if t.dtype != torch.float64:
        t = t.float()
    if t.shape[0] < min_points:
        raise GeloraError(f"need at least {min_points} points to estimate an intrinsic dimension, got {t.shape[0]}")
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise GeloraError(f"{bad} point(s) contain NaN or inf; remove or impute them before estimating")
    return t


def _drop_duplicates(r1: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Drop points whose nearest neighbour is at distance 0, with a warning that counts them."""
    keep = r1 > 0
    n_dup = int((~keep).sum())
    if n_dup:
        warnings.warn(f"dropping {n_dup} point(s) with a duplicate (nearest neighbour at distance 0)", stacklevel=3)
    if keep.sum() < 3:
        raise GeloraError(
            f"fewer than 3 distinct points remain after dropping {n_dup} duplicates; the data are (almost) constant"
        )
    return (r1[keep], *(o[keep] for o in others))


# --------------------------------------------------------------------------------------------------- TwoNN


def _twonn_fit(mu: np.ndarray, discard_fraction: float, method: str) -> tuple[float, np.ndarray, np.ndarray]:
    n = len(mu)
    k = int(n * (1 - discard_fraction))
    if k < 2:
        raise GeloraError(f"only {k} ratio(s) left after discarding {discard_fraction:.0%} of {n}; use more points")
    log_mu = np.log(np.sort(mu)[:k])
    y = -np.log1p(-np.arange(1, k + 1) / n)
    if method == "mle":
        d = (k - 1) / (log_mu.sum() + (n - k) * log_mu[-1])
    else:
        if k == n:  # discard_fraction=0: F(mu_(N)) = 1 puts the last point at infinity (skdim returns inf)
            log_mu, y = log_mu[:-1], y[:-1]
        d = float(log_mu @ y / (log_mu @ log_mu))
    return float(d), log_mu, y


class TwoNN:
    """TwoNN intrinsic-dimension estimator (Facco et al. 2017).

    Parameters
    ----------
    discard_fraction : float
        Fraction of the largest ratios mu = r2/r1 left out of the fit (the paper's heuristic: 0.1).
    method : {"linear", "mle"}
        Least-squares line through the origin (the paper) or censored maximum likelihood.

    Attributes
    ----------
    dimension_ : float
    result_ : IDEstimate
    mu_ : numpy.ndarray
        Per-point ratios r2/r1 after dropping duplicates (what a bootstrap resamples).

    Examples
    --------
    >>> import torch
    >>> X = torch.randn(2000, 5, dtype=torch.float64) @ torch.randn(5, 100, dtype=torch.float64)
    >>> round(TwoNN().fit(X).dimension_)
    5
    """

    def __init__(self, discard_fraction: float = 0.1, method: str = "linear"):
        if method not in ("linear", "mle"):
            raise GeloraError(f"unknown TwoNN method {method!r}; choose 'linear' or 'mle'")
        if not 0 <= discard_fraction < 1:
            raise GeloraError(f"discard_fraction must be in [0, 1), got {discard_fraction}")
        self.discard_fraction = discard_fraction
        self.method = method

    def fit(self, X) -> "TwoNN":
        X = as_points(X)
        dist, _ = nearest_neighbor_distances(X, k=2)
        r = dist.double().cpu().numpy()
        r1, r2 = _drop_duplicates(r[:, 0], r[:, 1])
        self.mu_ = r2 / r1
        d, x, y = _twonn_fit(self.mu_, self.discard_fraction, self.method)
        self.dimension_ = d
        self.result_ = IDEstimate(
            dimension=d,
            n_points=X.shape[0],
            n_used=len(x),
            estimator="twonn",
            params={"discard_fraction": self.discard_fraction, "method": self.method},
            x=x,
            y=y,
        )
        return self

    def refit(self, mu: np.ndarray) -> float:
        """Dimension from given ratios (a bootstrap resample of ``mu_``)."""
        return _twonn_fit(mu, self.discard_fraction, self.method)[0]


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


def _gride_fit(mu: np.ndarray, n1: int, d_range: tuple[float, float] = (1e-3, 1e3)) -> tuple[float, float]:
    mu = _filter_gride_ratios(mu)
    log_mu = np.log(mu)
    n2 = 2 * n1
    lo, hi = d_range
    f_lo, f_hi = _gride_dloglik(lo, log_mu, n1, n2), _gride_dloglik(hi, log_mu, n1, n2)
    if f_lo * f_hi > 0:  # no sign change: the likelihood peaks at a bound of the search range
        d = lo if abs(f_lo) < abs(f_hi) else hi
    else:
        d = brentq(_gride_dloglik, lo, hi, args=(log_mu, n1, n2), xtol=1e-10, rtol=1e-12)
    # Fisher information for the standard error, as DADApy does.
    one_minus = np.maximum(1.0 - mu ** (-d), 5 * np.finfo(np.float64).eps)
    info = len(mu) / d**2 + np.sum((n2 - n1 - 1) * (log_mu / one_minus) ** 2 * mu ** (-d))
    return float(d), float(info**-0.5)


class Gride:
    """GRIDE multiscale intrinsic-dimension estimator (Denti et al. 2022).

    Parameters
    ----------
    range_max : int
        Largest neighbour rank used; scales are n1 = 1, 2, 4, ..., with n2 = 2 n1 <= range_max.

    Attributes
    ----------
    dimensions_ : numpy.ndarray
        ID at each scale (coarser scales are more robust to noise, finer ones see more curvature).
    errors_ : numpy.ndarray
        Standard errors from the Fisher information.
    scales_ : numpy.ndarray
        Mean distance of the neighbours involved at each scale (DADApy's ``rs_scaling``).
    ranks_ : numpy.ndarray
        The n2 rank of each scale.
    dimension_ : float
        ID at the coarsest scale (the one ``estimate`` reports).
    """

    def __init__(self, range_max: int = 64):
        if range_max < 2:
            raise GeloraError(f"range_max must be at least 2, got {range_max}")
        self.range_max = range_max

    def fit(self, X) -> "Gride":
        X = as_points(X)
        n = X.shape[0]
        max_rank = min(n - 1, self.range_max)
        steps = 2 ** np.arange(int(math.log2(max_rank)) + 1)  # 1, 2, 4, ..., <= max_rank
        dist, _ = nearest_neighbor_distances(X, k=int(steps[-1]))
        r = dist.double().cpu().numpy()
        # DADApy keeps duplicates but replaces zero distances by machine epsilon; we drop and warn instead.
        (r,) = _drop_duplicates(r[:, 0], r)[1:]
        near, far = r[:, steps[:-1] - 1], r[:, steps[1:] - 1]
        self.mus_ = far / near
        fits = [_gride_fit(self.mus_[:, j], int(steps[j])) for j in range(self.mus_.shape[1])]
        self.dimensions_ = np.array([f[0] for f in fits])
        self.errors_ = np.array([f[1] for f in fits])
        self.scales_ = (near.mean(axis=0) + far.mean(axis=0)) / 2
        self.ranks_ = steps[1:]
        self.dimension_ = float(self.dimensions_[-1])
        self.result_ = IDEstimate(
            dimension=self.dimension_,
            n_points=n,
            n_used=len(r),
            estimator="gride",
            params={"range_max": self.range_max},
            x=self.scales_,
            y=self.dimensions_,
        )
        return self

    def refit(self, mus: np.ndarray) -> float:
        """Coarsest-scale dimension from given ratio rows (a bootstrap resample of ``mus_``)."""
        return _gride_fit(mus[:, -1], int(self.ranks_[-1] // 2))[0]


# --------------------------------------------------------------------------------------------------- API


def twonn(X, discard_fraction: float = 0.1, method: str = "linear") -> IDEstimate:
    """TwoNN estimate of ``X`` (n_points, n_features); see :class:`TwoNN`."""
    return TwoNN(discard_fraction, method).fit(X).result_


def gride(X, range_max: int = 64) -> IDEstimate:
    """GRIDE estimate of ``X``: ``.y`` holds the ID per scale, ``.dimension`` the coarsest; see :class:`Gride`."""
    return Gride(range_max).fit(X).result_


def make_estimator(estimator: str, **params) -> TwoNN | Gride:
    if estimator == "twonn":
        return TwoNN(**params)
    if estimator == "gride":
        return Gride(**params)
    raise GeloraError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")


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
        Resamples; 0 skips the interval.
    confidence : float
        Coverage of the percentile interval.
    seed : int
    **params
        Passed to the estimator (``discard_fraction``, ``method``, ``range_max``).
    """
    est = make_estimator(estimator, **params).fit(X)
    result = est.result_
    if n_bootstrap <= 0:
        return result
    ratios = est.mu_ if estimator == "twonn" else est.mus_
    rng = np.random.default_rng(seed)
    n = len(ratios)
    draws = np.array([est.refit(ratios[rng.integers(0, n, n)]) for _ in range(n_bootstrap)])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return IDEstimate(**{**result.__dict__, "ci_low": float(low), "ci_high": float(high)})
