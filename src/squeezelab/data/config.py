"""The data part of every run: which images, at what size, and which of them are the validation set.

`DataConfig` round-trips through JSON and is saved in every checkpoint. After `open_dataset` has
made a seeded split it returns the config with `split` filled in, so `squeezelab eval CKPT`
(without --data) and `squeezelab compress` evaluate on exactly the images the run validated on.
"""

from __future__ import annotations

import dataclasses

from squeezelab.errors import SqueezelabError
from squeezelab.utils.config import JsonConfig


@dataclasses.dataclass(frozen=True)
class DataConfig(JsonConfig):
    """Where the images come from and how they are split.

    spec: "digits" (default), "synthetic[:n=256,classes=4,size=32]", "cifar10:ROOT",
        "cifar100:ROOT", a folder (one sub-folder per class; train/ + val/ or test/ used when
        present) or a `.txt` list file of `path label` lines.
    image_size: side of the square images the model sees; None: the data set's own default
        (32 for digits, synthetic and CIFAR; 128 for folders and list files).
    val_fraction: share of images held out when the data has no validation set of its own.
    seed: seed of that split (stratified: every class keeps its share).
    skip_bad_images: skip (and count) unreadable images instead of stopping with an error.
    split: the validation set chosen for this run ({"val": [index or relative path, ...]}),
        recorded so that a checkpoint reproduces it; None until `open_dataset` fills it.

    >>> DataConfig.from_dict(DataConfig("digits").to_dict()) == DataConfig("digits")
    True
    """

    spec: str = "digits"
    image_size: int | None = None
    val_fraction: float = 0.2
    seed: int = 0
    skip_bad_images: bool = False
    split: dict | None = None

    def __post_init__(self):
        if not 0.0 < self.val_fraction < 1.0:
            raise SqueezelabError(f"--val-fraction must be between 0 and 1 (exclusive), got {self.val_fraction}")
        if self.image_size is not None and self.image_size < 8:
            raise SqueezelabError(f"--image-size must be at least 8, got {self.image_size}")


