"""How pixels become the tensor a set of weights expects.

Weights trained in different frameworks expect different inputs: torchvision's ImageNet weights
want RGB in [0, 1] normalised by the ImageNet mean/std at 224x224, while the original Caffe
SqueezeNet weights want BGR in [0, 255] minus the mean (104, 117, 123) at 227x227. Feeding one the
other's input silently ruins accuracy, so the preprocessing travels with the weights and with
every checkpoint as data.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """The input convention of a model: channel order, pixel range, mean/std, resize and crop.

    `mean` and `std` are given in the model's channel order (after any RGB->BGR flip) and in
    units of `pixel_range`.
    """

    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    channel_order: str = "RGB"
    pixel_range: float = 1.0  # 1.0: pixels scaled to [0, 1]; 255.0: raw 0-255 values
    resize: int = 256
    crop: int = 224

    def __post_init__(self):
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if len(self.mean) != len(self.std):
            raise ValueError("mean and std must have the same length")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields}
        return cls(**values)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Turn a uint8 batch (N, C, H, W) in RGB order into the model's float input."""
        x = images.float()
        if self.channel_order == "BGR":
            x = x.flip(1)
        x = x * (self.pixel_range / 255.0)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def image_to_uint8(self, image) -> torch.Tensor:
        """Resize (shorter side) and centre-crop a PIL image into a uint8 (3, crop, crop) tensor."""
        from PIL import Image

        image = image.convert("RGB")
        width, height = image.size
        scale = self.resize / min(width, height)
        size = (max(self.crop, round(width * scale)), max(self.crop, round(height * scale)))
        image = image.resize(size, Image.BILINEAR)
        left = (size[0] - self.crop) // 2
        top = (size[1] - self.crop) // 2
        image = image.crop((left, top, left + self.crop, top + self.crop))
        return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)

    def images_to_batch(self, images: Sequence) -> torch.Tensor:
        """PIL images of any size and mode -> the normalised float batch the model expects."""
        return self.normalize(torch.stack([self.image_to_uint8(im) for im in images]))


TORCHVISION_IMAGENET = Preprocessing()
CAFFE_IMAGENET = Preprocessing(
    mean=(104.0, 117.0, 123.0),  # in the model's channel order, here B, G, R
    std=(1.0, 1.0, 1.0),
    channel_order="BGR",
    pixel_range=255.0,
    resize=256,
    crop=227,
)
