import logging

import pytest
import torch

from gelora.measure import nearest_neighbor_distances
from gelora.measure import neighbors
from conftest import requires_cuda

PRECISIONS = ["bfloat16", "float32"]


def brute_force(X: torch.Tensor, k: int):
    d = torch.cdist(X.double(), X.double(), compute_mode="donot_use_mm_for_euclid_dist")
    d.fill_diagonal_(float("inf"))
    return d.topk(k, dim=1, largest=False)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def uncertified_rows(caplog) -> list[int]:
    """Rows each ranking pass left uncertified, from the module's debug log."""
    return [int(r.getMessage().split(" left ")[1].split()[0]) for r in caplog.records if " left " in r.getMessage()]


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("margin", [None, 0])
@pytest.mark.parametrize("k", [1, 2, 5])
def test_matches_brute_force(k, margin, precision):
    X = torch.randn(300, 20, dtype=torch.float64, generator=gen(k))
    d, i = nearest_neighbor_distances(X, k, margin=margin, precision=precision)
    bd, bi = brute_force(X, k)
    torch.testing.assert_close(d, bd, rtol=1e-12, atol=1e-12)
    assert torch.equal(i, bi)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_symmetric_walk_over_many_blocks_matches_brute_force(precision, monkeypatch):
    # Small score blocks (256 rows) and no width threshold: the upper-triangle walk with its merges runs over
    # 3 x 3 blocks, incomplete last block included.
    monkeypatch.setattr(neighbors, "_SCORE_BLOCK", 1 << 16)
    monkeypatch.setattr(neighbors, "_SYMMETRIC_MIN_WIDTH", 0)
    X = torch.randn(700, 20, dtype=torch.float64, generator=gen(6))
    d, i = nearest_neighbor_distances(X, 3, precision=precision)
    bd, bi = brute_force(X, 3)
    torch.testing.assert_close(d, bd, rtol=1e-12, atol=1e-12)
    assert torch.equal(i, bi)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_subspace_ranking_is_used_and_exact(precision, caplog):
    # 3-dimensional data in 64 dimensions with a little noise: the principal-subspace ranking applies.
    g = gen(1)
    basis, _ = torch.linalg.qr(torch.randn(64, 3, dtype=torch.float64, generator=g))
    X = torch.randn(600, 3, dtype=torch.float64, generator=g) @ basis.T
    X += 1e-3 * torch.randn(600, 64, dtype=torch.float64, generator=g)
    with caplog.at_level(logging.DEBUG, logger=neighbors.__name__):
        d, i = nearest_neighbor_distances(X, 2, precision=precision)
    assert "subspace ranking (4 of 64 coordinates)" in caplog.text
    bd, bi = brute_force(X, 2)
    torch.testing.assert_close(d, bd, rtol=1e-12, atol=1e-12)
    assert torch.equal(i, bi)


def test_no_subspace_ranking_for_full_rank_data(caplog):
    X = torch.randn(400, 64, dtype=torch.float64, generator=gen(2))
    with caplog.at_level(logging.DEBUG, logger=neighbors.__name__):
        nearest_neighbor_distances(X, 2)
    assert "subspace" not in caplog.text


@pytest.mark.parametrize("precision", PRECISIONS)
def test_ties_at_the_kth_distance_go_through_the_widened_pass(precision, caplog):
    # A rotated integer grid: every inner point has 4 neighbours at distance exactly 1, so with no margin the
    # ranking can never certify a row and all distances come from the widened pass.
    g = gen(3)
    grid = torch.cartesian_prod(torch.arange(15.0), torch.arange(15.0)).double()
    rotation, _ = torch.linalg.qr(torch.randn(10, 10, dtype=torch.float64, generator=g))
    X = torch.cat([grid, torch.zeros(len(grid), 8, dtype=torch.float64)], dim=1) @ rotation
    with caplog.at_level(logging.DEBUG, logger=neighbors.__name__):
        d, _ = nearest_neighbor_distances(X, 3, margin=0, precision=precision, subspace=False)
    assert uncertified_rows(caplog)[-1] > 100
    torch.testing.assert_close(d, brute_force(X, 3).values, rtol=1e-12, atol=1e-12)


def test_groups_of_duplicates_larger_than_the_candidate_list():
    # 40 copies each of 20 points, plus 50 points at distance exactly 1 from one copy: kth distances of 0 and ties.
    g = gen(4)
    centres = 10 * torch.randn(20, 16, dtype=torch.float64, generator=g)
    X = centres.repeat_interleave(40, dim=0)
    direction = torch.zeros(16, dtype=torch.float64)
    direction[0] = 1.0
    X = torch.cat([X, centres[:1] + direction.expand(50, 16)])
    d, _ = nearest_neighbor_distances(X, 2)
    torch.testing.assert_close(d, brute_force(X, 2).values, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("basis", [False, True])
def test_score_bound_covers_every_pair_at_its_own_distance(precision, basis):
    # The certificate's one inequality: a pair at distance d scores at most bound(d). Checked on all pairs of data
    # far from the origin in float32 (heavy cancellation) with a spread of norms.
    g = gen(5)
    X = (3e3 + torch.randn(300, 48, generator=g) * torch.logspace(-2, 2, 300).unsqueeze(1)).float()
    mean = X.mean(dim=0)
    P = torch.linalg.qr(torch.randn(48, 6, dtype=torch.float64, generator=g))[0] if basis else None
    scorer = neighbors._Scorer(X, mean, float(X.abs().max()), neighbors._precision(precision, X.device), P)
    rows = torch.arange(len(X))
    scores = scorer.scores(rows).double()
    exact = torch.cdist(X.double(), X.double(), compute_mode="donot_use_mm_for_euclid_dist")
    for i in range(0, len(X), 50):
        bound = scorer.bound(rows[i].expand(len(X)), exact[i])
        off = torch.arange(len(X)) != i
        assert bool((scores[i][off] <= bound[off]).all())


def test_exact_for_points_far_from_the_origin():
    g = gen(0)
    X = 1e4 + torch.randn(500, 8, dtype=torch.float64, generator=g)
    d, _ = nearest_neighbor_distances(X, 2)
    torch.testing.assert_close(d, brute_force(X, 2).values, rtol=1e-10, atol=0)
    X32 = X.float()
    d32, _ = nearest_neighbor_distances(X32, 2)
    exact32 = torch.cdist(X32, X32, compute_mode="donot_use_mm_for_euclid_dist").fill_diagonal_(float("inf"))
    torch.testing.assert_close(d32, exact32.topk(2, dim=1, largest=False).values, rtol=1e-6, atol=0)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("magnitude", [1e19, 1e-19, 1e-30])
def test_exact_at_extreme_magnitudes(precision, magnitude):
    # Squared norms past float32's range (1e19) would overflow the scores; bf16 dot-product units flush
    # subnormals (1e-19, 1e-30). The points are scaled by a power of two first, so neither happens.
    X = magnitude * torch.randn(400, 24, dtype=torch.float64, generator=gen(7))
    d, i = nearest_neighbor_distances(X, 5, precision=precision, subspace=False)
    bd, _ = brute_force(X, 5)
    torch.testing.assert_close(d, bd, rtol=1e-12, atol=0)
    assert not bool((i == torch.arange(len(X)).unsqueeze(1)).any())


def test_float32_matmul_precision_pinned_during_the_search_and_restored():
    # A user's "medium" precision would let oneDNN run the float32 ranking in bf16, beyond the certificate's bound.
    X = 1e4 + torch.randn(500, 8, dtype=torch.float64, generator=gen(8))
    saved = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        d, _ = nearest_neighbor_distances(X, 2, precision="float32")
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(saved)
    torch.testing.assert_close(d, brute_force(X, 2).values, rtol=1e-12, atol=0)


def test_self_excluded_by_index_so_duplicates_are_neighbours_at_zero():
    X = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0], [6.0, 8.0]], dtype=torch.float64)
    d, i = nearest_neighbor_distances(X, 1)
    assert d[0, 0] == 0 and i[0, 0] == 1
    assert d[1, 0] == 0 and i[1, 0] == 0
    assert d[2, 0] == 5.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="k < n_points"):
        nearest_neighbor_distances(torch.randn(3, 2), 3)
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        nearest_neighbor_distances(torch.randn(5, 2), 2, precision="half")
    with pytest.raises(ValueError, match="2-D floating-point"):
        nearest_neighbor_distances(torch.ones(5, 2, dtype=torch.int64), 2)
    for bad in (float("nan"), float("inf"), -float("inf")):
        X = torch.randn(50, 8)
        X[3, 0] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            nearest_neighbor_distances(X, 1)


@requires_cuda
def test_cuda_matches_cpu():
    X = torch.randn(2000, 64, dtype=torch.float64)
    d_cpu, _ = nearest_neighbor_distances(X, 2)
    d_gpu, _ = nearest_neighbor_distances(X.cuda(), 2)
    assert d_gpu.device.type == "cuda"
    torch.testing.assert_close(d_gpu.cpu(), d_cpu, rtol=1e-10, atol=1e-12)
