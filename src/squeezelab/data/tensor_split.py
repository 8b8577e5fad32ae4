"""Small data sets held as one uint8 tensor and augmented a whole batch at a time.

Decoding once and augmenting on the tensor (the airbench approach) keeps 2 CPU cores busy with
the model instead of with PIL: random crops are one gather over a padded batch, flips one
`torch.where`.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import torch


@dataclasses.dataclass
class TensorSplit:
    """Images (N, 3, H, W) uint8 and labels (N,) int64 of one split."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, indices: torch.Tensor, batch_size: int, *, augment: "Augment | None",
                generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """uint8 image batches and labels in the order of `indices`, augmented when `augment` is set."""
        for start in range(0, len(indices), batch_size):
            idx = indices[start:start + batch_size]
            images = self.images[idx]
            if augment is not None:
                images = augment(images, generator)
            yield images, self.labels[idx]


@dataclasses.dataclass(frozen=True)
class Augment:
    """Random translation (pad + crop, zero padding) and optional horizontal flip, per image.

    Flips are off for digits (a mirrored 3 is not a 3) and on for CIFAR and photos.
    """

    pad: int = 4
    flip: bool = False

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = images.shape
        if self.pad > 0:
            padded = torch.nn.functional.pad(images, (self.pad,) * 4)
            oy = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator)
            ox = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator)
            rows = (oy[:, None] + torch.arange(h))[:, :, None]  # (n, h, 1)
            cols = (ox[:, None] + torch.arange(w))[:, None, :]  # (n, 1, w)
            batch = torch.arange(n)[:, None, None]
            images = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
        if self.flip:
            flip = torch.rand(n, generator=generator) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(3), images)
        return images.contiguous()
