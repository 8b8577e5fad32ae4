"""scikit-learn's handwritten digits (1,797 8x8 images, 10 classes): the embedded default.

Nothing is downloaded: the images ship with scikit-learn. They are upscaled once (bilinear) to
the model's input size and replicated to 3 channels, so the same models and `predict` work on
ordinary RGB files.
"""

from __future__ import annotations

import numpy as np
import torch


def load_digits_tensor(image_size: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(images uint8 (N, 3, S, S), labels int64 (N,), class names)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = torch.from_numpy(bunch.images.astype(np.float32) * (255.0 / 16.0)).unsqueeze(1)
    pixels = torch.nn.functional.interpolate(pixels, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = pixels.clamp(0, 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return images, labels, [str(c) for c in bunch.target_names]


def load_synthetic_tensor(count: int, classes: int, image_size: int, seed: int = 0):
    """A learnable synthetic set for smoke tests: class k is a bright square at a class-specific
    place on noise, so a model can fit it in a few steps."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % classes
    images = torch.randint(0, 60, (count, 3, image_size, image_size), generator=g, dtype=torch.uint8)
    cells = max(1, int(np.ceil(np.sqrt(classes))))
    cell = max(1, image_size // cells)
    for k in range(classes):
        y, x = divmod(k, cells)
        images[labels == k, k % 3, y * cell:(y + 1) * cell, x * cell:(x + 1) * cell] = 230
    return images, labels, [f"class{k}" for k in range(classes)]
