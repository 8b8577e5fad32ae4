"""Trained quantization by weight sharing (Deep Compression, Section 3).

Each layer's kept (unpruned) weights are clustered by 1-D k-means into 2**bits centroids; the
layer then stores one small index per weight plus the codebook. The paper compares random,
density-based and linear centroid initialisation and finds linear (evenly spaced between the
smallest and largest weight) best, because it keeps the rare large weights, so it is used here.

k-means in 1-D needs no distance matrix: with sorted centroids each weight belongs to the
interval between the midpoints of its neighbours, so assignment is one `torch.bucketize` and the
update one `searchsorted` of the midpoints into the sorted weights plus prefix sums, so each
step costs O(k log n) after one sort (measured: about a second for all 26 layers of
squeezenet1_0; a dense distance matrix takes about 20 s).

Fine-tuning the centroids (Section 3.1): the paper sums the gradients of all weights in a cluster
and updates the centroid with it. A parametrization `weight = centroids[index] * mask` gives
exactly that through autograd (the gradient of a gather is a scatter-add), so any optimizer
fine-tunes the codebook while the indices and the pruning mask stay fixed.

>>> from squeezelab import create_model
>>> model = quantize_(create_model("squeezenet1_1", num_classes=10), QuantConfig(bits=4))
>>> int(model.features[0].weight.unique().numel()) <= 16
True
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezelab.compress.config import QuantConfig
from squeezelab.compress.prune import LayerFilter, conv_and_linear, current_mask, layers_to_compress

def kmeans_1d(values: torch.Tensor, k: int, iterations: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster 1-D `values` into at most `k` centroids with linear initialisation.

    Returns (centroids sorted ascending, index of each value's centroid). Empty clusters keep
    their centroid (they cost nothing: Huffman gives unused indices no code).

    >>> c, i = kmeans_1d(torch.tensor([0.0, 0.1, 1.0, 1.1]), 2)
    >>> [round(v, 2) for v in c.tolist()], i.tolist()
    ([0.05, 1.05], [0, 0, 1, 1])
    >>> kmeans_1d(torch.tensor([0.5, -1.0, 0.5]), 4)  # no more values than centroids: exact
    (tensor([-1.0000,  0.5000]), tensor([1, 0, 1]))
    """
    values = values.detach().flatten()
    if values.numel() == 0:
        return torch.zeros(1, dtype=torch.float32), torch.zeros(0, dtype=torch.long)
    distinct, inverse = torch.unique(values.float(), return_inverse=True)
    if len(distinct) <= k:  # already shared (a released .net, a .sqz): keep its values exactly
        return distinct.cpu(), inverse.cpu()
    # numpy: its searchsorted of a few hundred midpoints is microseconds (torch's copies the input)
    ordered = np.sort(values.double().cpu().numpy())
    prefix = np.concatenate([[0.0], np.cumsum(ordered)])
    k = max(1, min(k, values.numel()))
    centroids = np.linspace(ordered[0], ordered[-1], k)
    cuts = None
    for _ in range(iterations):
        # with sorted values every cluster is a contiguous run: its edges come from one
        # searchsorted of the k-1 midpoints and its sum from the prefix sums, O(k log n) a step
        centroids = np.sort(centroids)
        new_cuts = np.searchsorted(ordered, (centroids[1:] + centroids[:-1]) / 2, side="right")
        if cuts is not None and np.array_equal(new_cuts, cuts):
            break
        cuts = new_cuts
        edges = np.concatenate([[0], cuts, [len(ordered)]])
        counts = np.diff(edges)
        sums = prefix[edges[1:]] - prefix[edges[:-1]]
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
    centroids = torch.from_numpy(np.sort(centroids))
    centroids32 = centroids.float()
    return centroids32, torch.bucketize(values.float(), (centroids32[1:] + centroids32[:-1]) / 2, right=False)


class SharedWeight(nn.Module):
    """Parametrization weight = centroids[index] * mask: a trainable codebook, fixed indices."""

    def __init__(self, centroids: torch.Tensor, index: torch.Tensor, mask: torch.Tensor):
        super().__init__()
        self.centroids = nn.Parameter(centroids)
        self.register_buffer("index", index)
        self.register_buffer("mask", mask)

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return self.centroids[self.index] * self.mask


def quantize_layer_(module: nn.Module, bits: int, iterations: int = 30) -> SharedWeight:
    """Replace `module.weight` by a shared-weight parametrization, keeping any pruning mask."""
    weight = module.weight.detach()
    mask = current_mask(module)
    mask = (weight != 0).to(weight.dtype) if mask is None else mask.detach().clone()
    kept = weight[mask.bool()]
    centroids, kept_index = kmeans_1d(kept, 2**bits, iterations)
    index = torch.zeros(weight.shape, dtype=torch.long)
    index[mask.bool()] = kept_index
    return share_layer_(module, centroids, index, mask)


def share_layer_(module: nn.Module, centroids: torch.Tensor, index: torch.Tensor, mask: torch.Tensor) -> SharedWeight:
    """Replace `module.weight` by the shared-weight parametrization of a given codebook, index and
    mask (shaped as the weight), whoever chose them (k-means here, `compress.gptq`)."""
    weight = module.weight.detach()
    if parametrize.is_parametrized(module, "weight"):
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    shared = SharedWeight(centroids.to(weight.device, weight.dtype), index.to(weight.device),
                          mask.to(weight.device, weight.dtype))
    parametrize.register_parametrization(module, "weight", shared, unsafe=True)
    module.parametrizations.weight.original.requires_grad_(False)
    return shared


def quantize_(model: nn.Module, config: QuantConfig = QuantConfig(), *, filter_fn: LayerFilter = conv_and_linear) -> nn.Module:
    """Share the weights of the layers `filter_fn` selects, in place; returns the model."""
    layers = layers_to_compress(model, filter_fn, config.layer_bits, "quantize", "layer_bits")
    for name, module in layers.items():
        quantize_layer_(module, config.bits_for(name), config.iterations)
    return model


def shared_layers(model: nn.Module) -> dict[str, SharedWeight]:
    """{module name: its SharedWeight} for every weight-shared layer."""
    found = {}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            for p in module.parametrizations.weight:
                if isinstance(p, SharedWeight):
                    found[name] = p
    return found
