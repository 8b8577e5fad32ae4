import pytest
import torch

from squeezelab import create_model
from squeezelab.compress import PruneConfig, QuantConfig, kmeans_1d, prune, quantize_, shared_layers
from squeezelab.errors import SqueezelabError


def test_kmeans_linear_init_finds_separated_clusters():
    values = torch.cat([torch.randn(1000) * 0.01 + c for c in (-1.0, 0.0, 2.0)])
    centroids, index = kmeans_1d(values, 3)
    assert torch.allclose(centroids, torch.tensor([-1.0, 0.0, 2.0]), atol=0.01)
    assert index.tolist() == [0] * 1000 + [1] * 1000 + [2] * 1000


def test_kmeans_assigns_to_nearest_centroid():
    values = torch.randn(5000)
    centroids, index = kmeans_1d(values, 16)
    nearest = (values[:, None] - centroids[None, :]).abs().argmin(1)
    assert (index == nearest).float().mean() > 0.999  # ties at float rounding only


def test_kmeans_keeps_already_shared_values_exactly():
    # a released 8-bit model re-encoded at 8 bits must come back bit for bit: linear
    # initialisation over 256 uneven values used to merge rare ones
    codebook = torch.randn(256).sinh() * 0.1
    values = codebook[torch.randint(0, 256, (20000,), generator=torch.Generator().manual_seed(0))]
    centroids, index = kmeans_1d(values, 256)
    assert torch.equal(centroids[index], values)


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_quantized_layers_use_at_most_2_to_the_bits_values_and_keep_the_mask(bits):
    model = prune(create_model("squeezenet1_1", num_classes=10), PruneConfig(sparsity=0.6))
    zeros = model.features[3].expand3x3.weight == 0
    quantize_(model, QuantConfig(bits=bits))
    weight = model.features[3].expand3x3.weight
    assert torch.equal(weight == 0, zeros) or bool(((weight == 0) & ~zeros).sum() <= 1)
    assert weight[~zeros].unique().numel() <= 2**bits


def test_centroid_finetuning_sums_gradients_per_cluster_and_respects_mask():
    model = prune(create_model("squeezenet1_1", num_classes=10), PruneConfig(sparsity=0.5))
    quantize_(model, QuantConfig(bits=4, fc_bits=2))
    shared = shared_layers(model)
    assert shared["classifier.1"].centroids.numel() <= 4
    layer = model.classifier[1]
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert shared["classifier.1"].centroids.grad is not None
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    before = layer.weight.detach().clone()
    optimizer.step()
    after = layer.weight.detach()
    assert torch.equal(before == 0, after == 0) or bool((after[before == 0] == 0).all())
    assert after[before != 0].unique().numel() <= 4


def test_gradient_of_centroid_equals_summed_weight_gradients():
    layer = torch.nn.Linear(20, 5)
    from squeezelab.compress.quantize import quantize_layer_

    shared = quantize_layer_(layer, bits=2)
    x = torch.randn(3, 20)
    out = layer(x).square().sum()
    (grad_c,) = torch.autograd.grad(out, shared.centroids)
    w = layer.weight.detach().clone().requires_grad_(True)
    (grad_w,) = torch.autograd.grad(torch.nn.functional.linear(x, w, layer.bias).square().sum(), w)
    expected = torch.zeros_like(grad_c).index_add_(0, shared.index.flatten(), (grad_w * shared.mask).flatten())
    assert torch.allclose(grad_c, expected, atol=1e-5)


def test_bad_bits_are_a_clear_error():
    with pytest.raises(SqueezelabError):
        QuantConfig(bits=9)
