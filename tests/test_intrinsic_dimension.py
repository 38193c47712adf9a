"""Known answers on manifolds of known dimension, and agreement with scikit-dimension and DADApy."""

import warnings

import dadapy  # test-only references (the [test] extra): a missing one must fail the suite, not skip
import numpy as np
import pytest
import skdim
import torch

from gelora import GeloraError, Gride, TwoNN, estimate, gride, twonn
from conftest import requires_cuda

N = 4000


def rng(seed=0):
    return np.random.default_rng(seed)


def linear_subspace(d, D=200, n=N, seed=0):
    r = rng(seed)
    basis, _ = np.linalg.qr(r.normal(size=(D, d)))
    return r.normal(size=(n, d)) @ basis.T


def helix(n=N, seed=0):
    t = rng(seed).uniform(0, 4 * np.pi, n)
    return np.stack([np.cos(t), np.sin(t), 0.3 * t], axis=1)


def swiss_roll(n=N, seed=0):
    from sklearn.datasets import make_swiss_roll

    return make_swiss_roll(n, noise=0.0, random_state=seed)[0]


def sphere(k, n=N, seed=0):
    x = rng(seed).normal(size=(n, k + 1))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# TwoNN's relative standard error with N points is about 1/sqrt(0.9 N) (1.7% for N=4000); curvature and the
# sampling density add a small bias that grows with d (Facco et al. 2017, Fig. 2). 3 standard errors + 5% bias
# is a band a wrong estimator (off by one dimension for d <= 10) cannot hit.
def tolerance(d):
    return 3 * d / np.sqrt(0.9 * N) + 0.05 * d


@pytest.mark.parametrize("d", [1, 3, 6, 10])
def test_linear_subspace(d):
    assert twonn(linear_subspace(d)).dimension == pytest.approx(d, abs=tolerance(d))


@pytest.mark.parametrize(
    "name, points, d",
    [("helix", helix(), 1), ("swiss roll", swiss_roll(), 2), ("S^2", sphere(2), 2), ("S^5", sphere(5), 5)],
)
def test_curved_manifolds(name, points, d):
    assert twonn(points).dimension == pytest.approx(d, abs=tolerance(d)), name
    assert twonn(points, method="mle").dimension == pytest.approx(d, abs=tolerance(d)), name


@pytest.mark.parametrize("d", [2, 6])
def test_gride_known_dimension_at_every_scale(d):
    result = gride(linear_subspace(d, n=2000))
    assert np.all(np.abs(result.y - d) < tolerance(d) * 1.5)


@pytest.mark.parametrize(
    "method, discard_fraction", [("linear", 0.1), ("linear", 0.25), ("mle", 0.0), ("mle", 0.1), ("mle", 0.25)]
)
def test_agrees_with_scikit_dimension(method, discard_fraction):
    X = rng(1).normal(size=(1500, 12)) @ rng(2).normal(size=(12, 40))
    ours = twonn(X, discard_fraction=discard_fraction, method=method).dimension
    ref = skdim.id.TwoNN(discard_fraction=discard_fraction, method=method).fit(X).dimension_
    assert ours == pytest.approx(ref, rel=1e-6)


def test_linear_fit_without_discarding_skips_the_point_at_infinity():
    # skdim returns inf here (-log(1 - N/N)); we fit the N - 1 finite points.
    X = linear_subspace(4, n=2000)
    d = twonn(X, discard_fraction=0.0).dimension
    assert np.isfinite(d) and d == pytest.approx(twonn(X, discard_fraction=0.0, method="mle").dimension, rel=0.15)


def test_gride_agrees_with_dadapy():
    X = rng(3).normal(size=(1500, 7)) @ rng(4).normal(size=(7, 30))
    ids, errs, scales = dadapy.Data(coordinates=X).return_id_scaling_gride(range_max=64)
    fit = Gride(range_max=64).fit(X)
    np.testing.assert_allclose(fit.dimensions_, ids, rtol=1e-3)
    np.testing.assert_allclose(fit.errors_, errs, rtol=1e-3)
    np.testing.assert_allclose(fit.scales_, scales, rtol=1e-6)


def test_float32_and_float64_agree():
    X = linear_subspace(4, n=2000)
    assert twonn(X.astype(np.float32)).dimension == pytest.approx(twonn(X).dimension, rel=1e-4)


def test_duplicates_dropped_with_count():
    X = linear_subspace(3, n=500)
    X = np.concatenate([X, X[:7]])
    with pytest.warns(UserWarning, match="dropped 7 repeated copies"):
        r = twonn(X)
    assert r.n_points == 507
    assert r.n_used == int(500 * 0.9)


def test_all_duplicates_is_a_clear_error():
    X = np.ones((50, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(GeloraError, match="only 1 distinct point"):
            twonn(X)


@pytest.mark.parametrize(
    "X, message",
    [
        (np.ones((2, 3)), "at least 3 points"),
        (np.arange(10.0), "2-D array"),
        (np.array([[1.0, np.nan], [0.0, 1.0], [2.0, 2.0]]), "NaN or inf"),
        (np.array([[1.0, np.inf], [0.0, 1.0], [2.0, 2.0]]), "NaN or inf"),
        (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), "numeric"),
        (np.array([[1, None], [2, 3], [4, 5]], dtype=object), "numeric"),
    ],
)
def test_bad_input(X, message):
    with pytest.raises(ValueError, match=message):
        twonn(X)


def test_bootstrap_interval_is_deterministic_and_brackets_the_estimate():
    X = linear_subspace(5, n=2000)
    a = estimate(X, n_bootstrap=50, seed=7)
    b = estimate(X, n_bootstrap=50, seed=7)
    c = estimate(X, n_bootstrap=50, seed=8)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.ci_low < a.dimension < a.ci_high
    g = estimate(X, "gride", n_bootstrap=20, seed=0, range_max=16)
    assert g.ci_low < g.dimension < g.ci_high


def test_result_holds_the_fitted_curve():
    fit = TwoNN().fit(linear_subspace(3, n=1000))
    r = fit.result_
    assert len(r.x) == len(r.y) == r.n_used == 900
    assert np.all(np.diff(r.x) >= 0) and np.all(np.diff(r.y) > 0)
    assert fit.dimension_ == pytest.approx(float(r.x @ r.y / (r.x @ r.x)))


def test_unknown_estimator_and_method():
    with pytest.raises(GeloraError, match="unknown estimator"):
        estimate(np.zeros((5, 2)), "pca")
    with pytest.raises(GeloraError, match="unknown TwoNN method"):
        TwoNN(method="ols").fit(np.zeros((5, 2)))


@requires_cuda
def test_cuda_input_gives_the_cpu_answer():
    X = torch.from_numpy(linear_subspace(4, n=3000))
    assert twonn(X.cuda()).dimension == pytest.approx(twonn(X).dimension, rel=1e-9)
