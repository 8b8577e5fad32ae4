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
    """Random translation (pad + crop, zero padding), optional horizontal flip and optional cutout,
    per image.

    Flips are off for digits (a mirrored 3 is not a 3) and on for CIFAR and photos. Cutout (DeVries
    & Taylor, 2017) greys out one `cutout` x `cutout` square per image, centred anywhere (so it may
    be clipped at the border): it makes a network use more of the object than its most telling
    patch, a regulariser that pays off once a run repeats each image many times.
    """

    pad: int = 4
    flip: bool = False
    cutout: int = 0

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
        if self.cutout > 0:
            images = images.masked_fill(_squares(n, h, w, self.cutout, generator), CUTOUT_FILL)
        return images.contiguous()


CUTOUT_FILL = 128  # mid-grey: about the mean of natural photos, so about 0 once normalised


def _squares(n: int, h: int, w: int, side: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 1, h, w) masks, True inside one side x side square per image centred at a random pixel."""
    cy = torch.randint(0, h, (n, 1, 1, 1), generator=generator)
    cx = torch.randint(0, w, (n, 1, 1, 1), generator=generator)
    rows = torch.arange(h).view(1, 1, h, 1) - cy + side // 2
    cols = torch.arange(w).view(1, 1, 1, w) - cx + side // 2
    return (rows >= 0) & (rows < side) & (cols >= 0) & (cols < side)
