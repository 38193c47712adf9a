"""Intrinsic-dimension estimates at the edges: repeated points, extreme scales, tiny samples, degenerate bootstraps,
and the estimators' scikit-learn conventions."""

import warnings

import dadapy  # test-only reference: its remove_identical_points defines what "the distinct points" are
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from gelora import GeloraError, Gride, TwoNN, estimate, gride, twonn
from gelora.measure.intrinsic_dimension import MIN_BOOTSTRAP, TRUSTED_POINTS, _first_copies
from gelora.profile import estimate_boundary, profile_model


def cloud(n=400, d=3, D=10, seed=0):
    r = np.random.default_rng(seed)
    return r.normal(size=(n, d)) @ r.normal(size=(d, D))


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


# ----------------------------------------------------------------------------------------------- repeated points


def dadapy_distinct(X):
    data = dadapy.Data(coordinates=X, verbose=False)
    data.remove_identical_points()
    return data.X


@pytest.mark.parametrize("repeat", ["half twice", "all twice", "one five times"])
def test_repeated_points_count_once(repeat, capsys):
    X = cloud()
    extra = {"half twice": X[:200], "all twice": X, "one five times": np.repeat(X[:1], 4, axis=0)}[repeat]
    with pytest.warns(UserWarning, match=f"dropped {len(extra)} repeated copies of points; estimating from the 400"):
        got = twonn(np.concatenate([X, extra]))
    reference = dadapy_distinct(np.concatenate([X, extra]))  # sorted rows: a permutation of X
    assert len(reference) == 400
    assert got.dimension == twonn(reference).dimension == twonn(X).dimension
    assert got.n_points == 400 + len(extra) and got.n_used == 360


def test_gride_counts_repeated_points_once():
    X = cloud()
    with pytest.warns(UserWarning, match="dropped 200 repeated copies"):
        got = gride(np.concatenate([X, X[:200]]), range_max=16)
    np.testing.assert_allclose(got.y, gride(X, range_max=16).y, rtol=1e-12)


def test_signed_zeros_are_one_point():
    X = cloud(n=100)
    X[0, 0] = 0.0
    copy = X[:1].copy()
    copy[0, 0] = -0.0
    with pytest.warns(UserWarning, match="dropped 1 repeated cop"):
        assert twonn(np.concatenate([X, copy])).dimension == twonn(X).dimension


def test_repeated_rows_found_exactly_where_many_rows_share_columns():
    # 0/1 data: every column is shared by many rows, so the column filter narrows little and whole rows decide.
    B = (np.random.default_rng(1).random((300, 12)) < 0.3).astype(np.float64)
    distinct = len(np.unique(B, axis=0))
    keep = _first_copies(torch.from_numpy(B)).numpy()
    assert 0 < distinct < 300 and keep.sum() == distinct and len(np.unique(B[keep], axis=0)) == distinct
    assert _first_copies(torch.from_numpy(np.unique(B, axis=0))) is None


def test_profile_boundaries_count_repeated_points_once():
    X = cloud()
    b = estimate_boundary(0, np.concatenate([X, X[:200]]), "twonn", 0, 0)
    assert b.id == twonn(X).dimension and b.n_points == 600 and b.n_used == 360


def test_distinct_points_closer_than_the_dtype_resolves_are_an_error():
    X = cloud(n=50)
    X = np.concatenate([X / np.abs(X).max(), [[1e-200] + [0.0] * 9, [0.0] * 10]])  # 1e-200 squared underflows
    with pytest.raises(GeloraError, match="closer together than"):
        twonn(X)


# ----------------------------------------------------------------------------------------------- extreme scales


@pytest.mark.parametrize("exponent", [-1000, -600, 600, 1000])
def test_power_of_two_scales_give_identical_estimates(exponent):
    X = cloud(n=200)
    assert twonn(np.ldexp(X, exponent)).dimension == twonn(X).dimension
    scaled, plain = gride(np.ldexp(X, exponent), range_max=16), gride(X, range_max=16)
    np.testing.assert_array_equal(scaled.y, plain.y)
    np.testing.assert_allclose(scaled.x, np.ldexp(plain.x, exponent), rtol=1e-12)


@pytest.mark.parametrize("scale, dtype, rel", [(1e200, np.float64, 1e-9), (1e-200, np.float64, 1e-9),
                                               (1e25, np.float32, 1e-4), (1e-25, np.float32, 1e-4)])
def test_extreme_scales_give_the_same_estimate(scale, dtype, rel):
    X = cloud(n=200)
    assert twonn((X * scale).astype(dtype)).dimension == pytest.approx(twonn(X.astype(dtype)).dimension, rel=rel)
    scaled, plain = gride((X * scale).astype(dtype), range_max=16), gride(X.astype(dtype), range_max=16)
    assert scaled.dimension == pytest.approx(plain.dimension, rel=rel)


# ----------------------------------------------------------------------------------------------- tiny samples


def test_small_samples_warn_with_the_minimum():
    with pytest.warns(UserWarning, match=f"only 3 distinct points: estimates from fewer than {TRUSTED_POINTS}"):
        twonn(cloud(n=3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twonn(cloud(n=TRUSTED_POINTS))


def test_gride_on_three_points_refuses_the_interval_without_numpy_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        assert np.isfinite(gride(cloud(n=3)).dimension)
        with pytest.raises(GeloraError, match="bootstrap resamples of the 3 ratios could not be fitted"):
            estimate(cloud(n=3), "gride", n_bootstrap=MIN_BOOTSTRAP)


def test_gride_scales_without_a_maximum_are_nan_not_a_bound():
    lattice = np.arange(200.0)[:, None] * np.ones((1, 2))  # r2 = r1 for every inner point
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fit = Gride().fit(lattice)
    assert np.isnan(fit.dimensions_[0]) and np.isnan(fit.errors_[0])
    assert fit.dimension_ == pytest.approx(1, abs=0.1)


def test_twonn_on_a_regular_grid_is_a_clear_error():
    grid = np.stack(np.meshgrid(np.arange(20.0), np.arange(20.0)), -1).reshape(-1, 2)
    for method in ("linear", "mle"):
        with pytest.raises(GeloraError, match="same distance"):
            twonn(grid, method=method)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_bootstrap": -5}, "must be 0 \\(no interval\\) or at least 20"),
        ({"n_bootstrap": 1}, "got 1$"),
        ({"n_bootstrap": MIN_BOOTSTRAP - 1}, "at least 20"),
        ({"n_bootstrap": 2.5}, "at least 20"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"confidence": 1.5}, "confidence must be between 0 and 1"),
    ],
)
def test_bootstrap_settings_are_checked_before_the_points(kwargs, message):
    with pytest.raises(GeloraError, match=message):
        estimate(np.ones((2, 3)), **kwargs)  # too few points: the settings are checked first


def test_minimum_bootstrap_brackets_the_estimate():
    r = estimate(cloud(), n_bootstrap=MIN_BOOTSTRAP)
    assert r.ci_low < r.dimension < r.ci_high


def test_profile_checks_bootstrap_before_loading_anything():
    with pytest.raises(GeloraError, match="at least 20"):
        profile_model(object(), None, [], bootstrap=5)


# ----------------------------------------------------------------------------------------------- sklearn conventions


@pytest.mark.parametrize("est", [TwoNN(discard_fraction=0.2, method="mle"), Gride(range_max=16)])
def test_estimators_follow_scikit_learn_conventions(est):
    params = est.get_params()
    assert params == ({"discard_fraction": 0.2, "method": "mle"} if isinstance(est, TwoNN) else {"range_max": 16})
    copy = clone(est)
    assert copy is not est and copy.get_params() == params
    fitted = quiet(copy.fit, cloud())
    check_is_fitted(fitted)
    learned = set(vars(fitted)) - set(params)
    assert learned and all(name.endswith("_") for name in learned)
    assert fitted.mu_.shape[0] == 400 and not hasattr(fitted, "mus_")
    assert not hasattr(est, "mu_")  # clone fitted the copy only


def test_constructor_stores_settings_and_fit_checks_them():
    est = TwoNN(method="ols")
    assert est.get_params()["method"] == "ols"
    assert est.set_params(method="mle").method == "mle"
    with pytest.raises(GeloraError, match="range_max must be an integer of at least 2"):
        Gride(range_max=1).fit(cloud())
