"""The data part of every run: which images, at what size, and which of them are the validation set.

`DataConfig` round-trips through JSON and is saved in every checkpoint. After `open_dataset` has
made a seeded split it returns the config with `split` filled in, so `squeezelab eval CKPT`
(without --data) and `squeezelab compress` evaluate on exactly the images the run validated on;
`evaluation_config` decides what `eval --data X` measures on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

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
        {"val": "all"} makes every image the validation set (`evaluation_config`: data the model
        has not been trained on).

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



ALL_IMAGES = {"val": "all"}
HELD_OUT_FOLDERS = ("test", "val")  # a folder's own held-out images, when it has them


def same_source(a: str, b: str) -> bool:
    """Whether two data specs name the same images: paths compared resolved (`photos` and
    `./photos/` are one folder), other specs (digits, synthetic:..., cifar10:ROOT) by their text
    with ROOT resolved.

    >>> same_source("digits", "digits"), same_source("photos", "./photos/"), same_source("digits", "photos")
    (True, True, False)
    """
    def key(spec: str) -> str:
        kind, sep, root = spec.partition(":")
        if sep and kind in ("cifar10", "cifar100"):
            return f"{kind}:{Path(root).expanduser().resolve()}"
        if spec == "digits" or spec.startswith("synthetic"):
            return spec
        return str(Path(spec).expanduser().resolve())

    return key(a) == key(b)


def evaluation_config(recorded: dict | None, spec: str | None, *, image_size: int | None = None,
                      skip_bad_images: bool = False) -> DataConfig:
    """The images `squeezelab eval` measures on: without `spec`, the validation split the run
    recorded; with the run's own data, that same split; with other data, all of it (or, for a
    folder that has one, its test/ or val/ sub-folder), since none of it was trained on.

    >>> evaluation_config(None, "photos").split, evaluation_config({"spec": "digits", "split": {"val": [3]}}, None).split
    ({'val': 'all'}, {'val': [3]})
    """
    if spec is None or (recorded and same_source(spec, recorded.get("spec", ""))):
        if not recorded:
            raise SqueezelabError("the model file records no data set; pass --data SPEC")
        return DataConfig.from_dict({**recorded, "skip_bad_images": skip_bad_images or recorded.get("skip_bad_images", False)})
    folder = Path(spec).expanduser()
    held_out = next((folder / name for name in HELD_OUT_FOLDERS if (folder / name).is_dir()), None)
    return DataConfig(str(held_out) if held_out else spec, image_size=image_size, skip_bad_images=skip_bad_images,
                      split=ALL_IMAGES)


def describe_evaluation(config: DataConfig) -> str:
    """Which images an evaluation config means, for the line `squeezelab eval` prints."""
    if config.split == ALL_IMAGES:
        return f"all images of {config.spec}"
    return f"the validation split of {config.spec} recorded with the model"
