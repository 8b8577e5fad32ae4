"""Patch-whitening initialisation of a network's first convolution.

A randomly initialised first layer spends the first epochs of a short run learning what the
fastest CIFAR-10 trainers (hlb-cifar10, airbench) start from: filters that decorrelate the pixels
of a patch. Here the first convolution's filters are set from the eigenvectors of the training
images' k x k patch covariance, each scaled by 1/sqrt(eigenvalue), in +/- pairs so that a ReLU
after it keeps both signs. Only the initialisation changes: the filters train as usual.
"""

from __future__ import annotations

import torch
from torch import nn

from squeezelab.errors import SqueezelabError

EPS = 5e-4  # added to the eigenvalues: the flattest directions would otherwise be amplified without bound
PATCH_SAMPLES = 200_000  # patches the covariance is measured on; plenty for a 27 x 27 matrix


def first_conv(model: nn.Module) -> nn.Conv2d:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None or conv.groups != 1:
        raise SqueezelabError("patch whitening needs a model whose first layer is a plain convolution")
    return conv


@torch.no_grad()
def whiten_first_conv_(model: nn.Module, images: torch.Tensor, *, seed: int = 0) -> int:
    """Set the first convolution's filters from the patch statistics of `images` (normalised, NCHW);
    returns how many filters were set (2 x the directions used; any others keep their init).

    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    >>> whiten_first_conv_(model, torch.randn(16, 3, 8, 8))
    8
    """
    conv = first_conv(model)
    if images.shape[1] != conv.in_channels:
        raise SqueezelabError(f"the first convolution takes {conv.in_channels} channels; the images have "
                              f"{images.shape[1]}")
    patches = nn.functional.unfold(images.float(), conv.kernel_size).transpose(1, 2).reshape(-1, conv.weight[0].numel())
    generator = torch.Generator().manual_seed(seed)
    if len(patches) > PATCH_SAMPLES:
        patches = patches[torch.randperm(len(patches), generator=generator)[:PATCH_SAMPLES]]
    patches = patches.double()
    patches -= patches.mean(0)
    eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
    directions = min(conv.out_channels // 2, len(eigenvalues))
    top = eigenvalues.argsort(descending=True)[:directions]
    filters = (eigenvectors[:, top] / (eigenvalues[top] + EPS).sqrt()).T.float()
    filters = torch.cat([filters, -filters]).view(2 * directions, *conv.weight.shape[1:])
    conv.weight[: 2 * directions] = filters.to(conv.weight)
    if conv.bias is not None:
        conv.bias[: 2 * directions] = 0
    return 2 * directions
