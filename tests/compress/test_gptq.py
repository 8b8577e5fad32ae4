"""Error-compensating pruning and sharing of one layer: the quota, the codebook, and a lower
output error than magnitude pruning with plain k-means on correlated inputs."""

from __future__ import annotations

import pytest
import torch

from squeezelab.compress.datafree import shared_weight
from squeezelab.compress.gptq import Moments, input_columns, relative_error, share_weight


def _layer(seed=0, rows=32, d=96, n=2000):
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=generator) / d ** 0.5
    x = torch.randn(n, d, generator=generator) @ mixing + 0.3 * torch.randn(n, d, generator=generator)
    weight = torch.randn(rows, d, generator=generator) * 0.1
    weight[torch.rand(rows, d, generator=generator) < 0.3] = 0  # pruned before
    return weight, x.double().T @ x.double() / n


@pytest.mark.parametrize("density, bits", [(1.0, 3), (0.6, 4), (0.5, 2)])
def test_keeps_its_quota_keeps_old_zeros_and_at_most_2_to_the_bits_centroids(density, bits):
    weight, hessian = _layer()
    shared = share_weight(weight, hessian, density, bits)
    nonzero = int((weight != 0).sum())
    assert abs(int(shared.mask.sum()) - round(density * nonzero)) <= 2  # per-block rounding
    assert not bool(shared.mask[(weight == 0).flatten()].any())
    assert len(shared.centroids) <= 2 ** bits
    values = shared.weight(weight.shape)
    assert bool((values[~shared.mask.view(weight.shape)] == 0).all())
    assert shared.error == pytest.approx(relative_error(weight, values, hessian), rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("density, bits", [(1.0, 3), (0.6, 3)])
def test_compensation_beats_magnitude_pruning_and_plain_kmeans_on_the_output(seed, density, bits):
    weight, hessian = _layer(seed)
    compensated = share_weight(weight, hessian, density, bits).error
    plain, _mask, _index, _size = shared_weight(weight, density, bits)
    assert compensated < relative_error(weight, plain, hessian)


def test_a_layer_that_already_fits_its_codebook_is_kept_exactly():
    weight = torch.tensor([[0.5, -0.5, 0.0, 0.25], [0.25, 0.5, -0.5, 0.0]])
    shared = share_weight(weight, torch.eye(4, dtype=torch.float64), 1.0, 2)
    assert torch.equal(shared.weight(weight.shape), weight) and shared.error == 0.0


def test_moments_are_the_second_moment_of_the_im2col_columns():
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 5, 5)
    moments = Moments(conv)
    moments.add(x[:1])
    moments.add(x[1:])
    cols = input_columns(conv, x).double()
    assert cols.shape == (2 * 25, 27)
    assert torch.allclose(moments.hessian, cols.T @ cols / 50)
    # the columns reproduce the conv: W (rows, d) times each column
    out = (conv.weight.flatten(1).double() @ cols.T).T
    assert torch.allclose(out.float(), conv(x).permute(0, 2, 3, 1).reshape(-1, 4), atol=1e-5)
