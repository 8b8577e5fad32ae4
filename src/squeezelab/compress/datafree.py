"""Compression without the training data: unlabelled images decide how much each layer keeps.

Deep Compression (Han et al., 2016) fine-tunes on the training set after pruning and after weight
sharing; an ImageNet model compressed by someone without ImageNet cannot. Here a folder of
unlabelled natural images stands in, in three steps:

1. Sensitivity (`layer_options`): the input of every layer is recorded on a few calibration
   images; for each layer and each candidate setting (fraction of its kept weights to keep,
   codebook bits) the weights are pruned by magnitude and shared by k-means, and the relative
   change of the layer's output and the bytes of its streams (their entropy) are measured.
2. Allocation (`allocate`): every layer starts at its densest, widest setting; the step that saves
   the most bytes per unit of added output change is taken until the file fits `target_bytes`.
   Layers whose outputs barely move (most 3x3 expand layers) give bits; the first conv and the
   classifier keep theirs.
3. Codebook refinement (`distill_`): with indices and masks fixed, the centroids and biases are
   trained so that the compressed model's outputs match the uncompressed model's on the
   calibration images (a KL divergence to its softmax; Hinton et al., 2015): no label is needed.

The result is measured by top-1 agreement with the uncompressed model on held-out images that no
step has seen (`split_images` keeps the two sets disjoint).
"""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezelab.compress.codec import sparse_entries
from squeezelab.compress.config import DEFAULT_GAP_BITS
from squeezelab.compress.prune import magnitude_mask, recorded_inputs, selected_layers
from squeezelab.compress.quantize import kmeans_1d, quantize_layer_, shared_layers
from squeezelab.errors import SqueezelabError

DENSITY_FACTORS = (1.0, 0.85, 0.7, 0.55)  # of the weights a layer keeps now
BIT_CHOICES = (8, 7, 6, 5, 4, 3)
LAYER_OVERHEAD_BYTES = 60  # directory entry in the deflated header, stream lengths


@dataclasses.dataclass(frozen=True)
class Option:
    """One setting of one layer: what it keeps, its bits, its output change and its bytes."""

    density_factor: float
    bits: int
    error: float  # ||W'x - Wx||^2 / ||Wx||^2 on the calibration inputs
    bytes: int


def split_images(folder: str | Path, calibration: int, held_out: int, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Disjoint (calibration, held-out) image lists from a folder of unlabelled images (any
    layout, searched recursively), in a seeded random order."""
    from squeezelab.data.images import image_files

    root = Path(folder)
    if not root.is_dir():
        raise SqueezelabError(f"--calib-data {folder} is not a folder; pass a folder of images")
    files = image_files([root])
    if len(files) < calibration + 1:
        raise SqueezelabError(f"--calib-data {folder} holds {len(files)} images; need more than the {calibration} "
                              "calibration images, to hold some out for measuring agreement")
    random.Random(seed).shuffle(files)
    return files[:calibration], files[calibration:calibration + held_out]


def load_images(paths: list[Path], preprocessing) -> torch.Tensor:
    """uint8 (N, 3, crop, crop) tensors, decoded once."""
    from squeezelab.data.images import open_image

    return torch.stack([preprocessing.image_to_uint8(open_image(p)) for p in paths])


def logits(model: nn.Module, images: torch.Tensor, preprocessing, batch_size: int = 50) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(preprocessing.normalize(images[i:i + batch_size]))
                          for i in range(0, len(images), batch_size)])


def layer_inputs(model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input each conv/linear layer receives on `batch` (one forward pass with hooks)."""
    return dict(recorded_inputs(model, batch))


def shared_weight(weight: torch.Tensor, density_factor: float, bits: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray, int]:
    """The weight pruned to `density_factor` of its non-zeros and shared into 2**bits centroids:
    (weight, flat mask, flat index, codebook size)."""
    flat = weight.detach().flatten()
    mask = magnitude_mask(flat, density_factor, of_nonzero=True).bool()
    centroids, index = kmeans_1d(flat[mask], 2**bits)
    full_index = torch.zeros(flat.numel(), dtype=torch.long)
    full_index[mask] = index
    shared = torch.where(mask, centroids[full_index], torch.zeros(()))
    return shared.view_as(weight), mask.numpy(), full_index.numpy(), len(centroids)


def _entropy_bytes(symbols: np.ndarray) -> float:
    counts = np.bincount(symbols)
    p = counts[counts > 0] / max(1, len(symbols))
    return float(-(p * np.log2(p)).sum() * len(symbols) / 8)


def stream_bytes(mask: np.ndarray, index: np.ndarray, codebook: int, gap_bits: int = DEFAULT_GAP_BITS) -> int:
    """About what the codec stores for one shared layer: Huffman-coded index and gap streams
    (their entropy), the float32 codebook and the code-length tables."""
    gaps, symbols = sparse_entries(mask, index, codebook, gap_bits)
    return int(math.ceil(_entropy_bytes(symbols) + _entropy_bytes(gaps))) + 5 * codebook + (1 << gap_bits) + LAYER_OVERHEAD_BYTES


def _output(module: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    if isinstance(module, nn.Conv2d):
        return module._conv_forward(x, weight, None)
    return nn.functional.linear(x, weight)


def _settings(weight: torch.Tensor, densities: tuple[float, ...] = DENSITY_FACTORS,
              bits: tuple[int, ...] = BIT_CHOICES) -> Iterator[tuple[float, int, torch.Tensor, int]]:
    """(density factor, bits, the weight so pruned and shared, its stream bytes) per candidate."""
    for factor in densities:
        for b in bits:
            shared, mask, index, size = shared_weight(weight, factor, b)
            yield factor, b, shared, stream_bytes(mask, index, size)


def layer_options(model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, list[Option]]:
    """Every candidate setting of every layer, with its output change and bytes (see module doc)."""
    options = {}
    with torch.no_grad():
        for name, module in selected_layers(model).items():
            reference = _output(module, inputs[name], module.weight)
            scale = float(reference.pow(2).sum()) or 1.0
            options[name] = [
                Option(factor, b, float((_output(module, inputs[name], weight) - reference).pow(2).sum()) / scale, size)
                for factor, b, weight, size in _settings(module.weight)]
    return options


def network_options(model: nn.Module, images: torch.Tensor, teacher_logits: torch.Tensor, preprocessing,
                    densities: tuple[float, ...] = DENSITY_FACTORS, bits: tuple[int, ...] = BIT_CHOICES
                    ) -> dict[str, list[Option]]:
    """Every candidate setting of every layer, with the change of the *whole network's* output it
    causes alone: the mean KL divergence from the uncompressed model's softmax on `images` with
    only that layer pruned and shared. A layer's own output change misses how later layers
    amplify or damp it; this costs one forward pass of the images per layer and setting."""
    targets = teacher_logits.log_softmax(1)
    batch = preprocessing.normalize(images)
    options = {}
    model.eval()
    with torch.no_grad():
        for name, module in selected_layers(model).items():
            original = module.weight.detach().clone()
            found = []
            for factor, b, weight, size in _settings(original, densities, bits):
                module.weight.copy_(weight)
                out = model(batch).log_softmax(1)
                error = float(nn.functional.kl_div(out, targets, log_target=True, reduction="batchmean"))
                found.append(Option(factor, b, max(0.0, error), size))
            module.weight.copy_(original)
            options[name] = found
    return options


def allocate(options: dict[str, list[Option]], budget: int) -> dict[str, Option]:
    """Per layer, the option to use: from the largest, the cheapest steps in added error per byte
    saved, until the layers fit `budget` bytes (or nothing smaller is left)."""
    chosen = {name: max(found, key=lambda o: (o.bytes, -o.error)) for name, found in options.items()}
    while sum(o.bytes for o in chosen.values()) > budget:
        best, best_cost = None, math.inf
        for name, found in options.items():
            current = chosen[name]
            for option in found:
                saved = current.bytes - option.bytes
                if saved > 0:
                    cost = max(0.0, option.error - current.error) / saved
                    if cost < best_cost:
                        best, best_cost = (name, option), cost
        if best is None:
            break
        chosen[best[0]] = best[1]
    return chosen


def apply_allocation_(model: nn.Module, chosen: dict[str, Option]) -> None:
    """Prune and share each layer's weights as `chosen` says (masks and indices then fixed)."""
    layers = selected_layers(model)
    for name, option in chosen.items():
        module = layers[name]
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        with torch.no_grad():
            module.weight.mul_(magnitude_mask(module.weight, option.density_factor, of_nonzero=True))
        quantize_layer_(module, option.bits)


def distill_(student: nn.Module, images: torch.Tensor, teacher_logits: torch.Tensor, preprocessing, *,
             epochs: int = 2, batch_size: int = 16, rel_lr: float = 1e-3, seed: int = 0,
             check: tuple[torch.Tensor, torch.Tensor] | None = None,
             log: Callable[[str], None] = lambda _m: None) -> tuple[float, float]:
    """Train the shared centroids and the biases of `student` (eval mode: no dropout) so that its
    softmax matches `teacher_logits` on `images`; returns the mean KL divergence before and after,
    on `check` (other calibration images and their teacher logits) when given, else on `images`.
    Each layer's rate is `rel_lr` x its mean absolute weight (layers differ in scale by 100x). When
    refinement does not lower that divergence, the codebooks are put back as they were: a hundred
    images are few for a thousand centroids, and the fit to them can move other images away."""
    groups = []
    modules = dict(student.named_modules())
    for name, shared in shared_layers(student).items():
        scale = float(shared.centroids.detach().abs().mean()) or 1e-3
        params = [shared.centroids] + ([modules[name].bias] if modules[name].bias is not None else [])
        groups.append({"params": params, "lr": rel_lr * scale})
    check_images, check_logits = check if check is not None else (images, teacher_logits)
    before = divergence(student, check_images, check_logits, preprocessing)
    if not groups or epochs == 0:
        return before, before
    saved = [[p.detach().clone() for p in g["params"]] for g in groups]
    optimizer = torch.optim.Adam(groups)
    generator = torch.Generator().manual_seed(seed)
    student.eval()
    targets = teacher_logits.log_softmax(1)
    for epoch in range(1, epochs + 1):
        for batch in torch.randperm(len(images), generator=generator).split(batch_size):
            out = student(preprocessing.normalize(images[batch])).log_softmax(1)
            loss = nn.functional.kl_div(out, targets[batch], log_target=True, reduction="batchmean")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    after = divergence(student, check_images, check_logits, preprocessing)
    where = "calibration images it did not train on" if check is not None else "the calibration images"
    log(f"codebook refinement: KL to the uncompressed model {before:.4f} -> {after:.4f} on the {where}")
    if after > before:
        with torch.no_grad():
            for group, values in zip(groups, saved):
                for p, v in zip(group["params"], values):
                    p.copy_(v)
        return before, before
    return before, after


def divergence(student: nn.Module, images: torch.Tensor, teacher_logits: torch.Tensor, preprocessing) -> float:
    """Mean KL(teacher || student) over `images`."""
    out = logits(student, images, preprocessing).log_softmax(1)
    return float(nn.functional.kl_div(out, teacher_logits.log_softmax(1), log_target=True, reduction="batchmean"))


def top1_agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.argmax(1) == b.argmax(1)).float().mean())
