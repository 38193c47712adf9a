import numpy as np
import pytest
import torch

from gelora.measure import nearest_neighbor_distances
from conftest import requires_cuda


def brute_force(X: torch.Tensor, k: int):
    d = torch.cdist(X.double(), X.double(), compute_mode="donot_use_mm_for_euclid_dist")
    d.fill_diagonal_(float("inf"))
    return d.topk(k, dim=1, largest=False)


@pytest.mark.parametrize("block_size", [None, 7, 64, 1000])
@pytest.mark.parametrize("k", [1, 2, 5])
def test_matches_brute_force(k, block_size):
    X = torch.randn(300, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(k))
    d, i = nearest_neighbor_distances(X, k, block_size=block_size)
    bd, bi = brute_force(X, k)
    torch.testing.assert_close(d, bd, rtol=1e-12, atol=1e-12)
    assert torch.equal(i, bi)


def test_exact_despite_float32_ranking_of_far_from_origin_points():
    # Points far from the origin: |x|^2 - 2 x.y cancels badly in float32, the recomputed distances must not.
    g = torch.Generator().manual_seed(0)
    X = 1e4 + torch.randn(500, 8, dtype=torch.float64, generator=g)
    d, _ = nearest_neighbor_distances(X, 2)
    bd, _ = brute_force(X, 2)
    torch.testing.assert_close(d, bd, rtol=1e-10, atol=0)


def test_self_excluded_by_index_so_duplicates_are_neighbours_at_zero():
    X = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0], [6.0, 8.0]], dtype=torch.float64)
    d, i = nearest_neighbor_distances(X, 1)
    assert d[0, 0] == 0 and i[0, 0] == 1
    assert d[1, 0] == 0 and i[1, 0] == 0
    assert d[2, 0] == 5.0


def test_k_out_of_range():
    with pytest.raises(ValueError, match="k < n_points"):
        nearest_neighbor_distances(torch.randn(3, 2), 3)


@requires_cuda
def test_cuda_matches_cpu():
    X = torch.randn(2000, 64, dtype=torch.float64)
    d_cpu, _ = nearest_neighbor_distances(X, 2)
    d_gpu, _ = nearest_neighbor_distances(X.cuda(), 2)
    assert d_gpu.device.type == "cuda"
    torch.testing.assert_close(d_gpu.cpu(), d_cpu, rtol=1e-10, atol=1e-12)
