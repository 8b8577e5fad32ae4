"""`Dataset`: the one face every kind of data has once it is opened.

A `Dataset` has `classes`, a `preprocessing` (the normalisation, recorded in checkpoints), a
`train` and a `val` split, and `batches(...)`, which yields normalised float tensors and labels:
augmented for training, plain for evaluation. The readers (`datasets.py` for tensors, `cifar.py`,
`files.py`) build one; `open_dataset` picks the reader.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterator

import torch

from squeezelab.data.config import DataConfig
from squeezelab.data.tensor_split import Augment, TensorSplit
from squeezelab.errors import SqueezelabError
from squeezelab.preprocessing import Preprocessing


@dataclasses.dataclass
class Dataset:
    """An opened data set. `config` has the split filled in: save it with the run."""

    config: DataConfig
    classes: list[str]
    preprocessing: Preprocessing
    train: object  # TensorSplit or files.FileSplit
    val: object
    augment: Augment | None = None
    skipped: list[str] = dataclasses.field(default_factory=list)  # bad images skipped

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return self.preprocessing.crop

    def batches(self, split: str = "train", batch_size: int = 128, *, train: bool | None = None, epoch: int = 0,
                seed: int | None = None, rank: int = 0, world_size: int = 1, drop_last: bool | None = None,
                workers: int | None = None, shuffle: bool | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Normalised float batches (N, 3, S, S) and int64 labels of `split` ("train" or "val").

        train (default: split == "train") shuffles with seed + epoch and augments; evaluation
        batches keep the file order. `shuffle=True` with `train=False` draws plain images in a
        seeded random order: what a caller that reads only the first batches needs (batch-norm
        or int8 calibration), since a folder's file order is one class after another. Under data-parallel training each rank gets every
        `world_size`-th item (training: a DistributedSampler over a seeded permutation).

        >>> data = open_dataset(DataConfig("synthetic:n=32,classes=2"))
        >>> x, y = next(data.batches("val", 8))
        >>> x.dtype, x.shape[1:]
        (torch.float32, torch.Size([3, 32, 32]))
        """
        part = getattr(self, split)
        train = split == "train" if train is None else train
        seed = self.config.seed if seed is None else seed
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        indices = _indices(len(part), shuffle=train if shuffle is None else shuffle, generator=generator, rank=rank,
                           world_size=world_size, seed=seed, epoch=epoch)
        if train and (drop_last if drop_last is not None else drops_ragged_batch(len(indices), batch_size)):
            indices = indices[: len(indices) // batch_size * batch_size]
        augment = self.augment if train else None
        if isinstance(part, TensorSplit):
            source = part.batches(indices, batch_size, augment=augment, generator=generator)
        else:
            source = part.batches(indices, batch_size, train=train, generator=generator, workers=workers)
        for images, labels in source:
            yield self.preprocessing.normalize(images), labels


    def num_batches(self, split: str = "train", batch_size: int = 128, world_size: int = 1) -> int:
        """How many batches `batches(split, batch_size, world_size=...)` yields on each process: what
        a learning-rate schedule is sized by. Training shards and ragged-batch rule as `batches`.

        >>> open_dataset(DataConfig("synthetic:n=125,classes=2")).num_batches("train", 32)  # 100 images
        4
        """
        per_rank = math.ceil(len(getattr(self, split)) / world_size)
        full, ragged = divmod(per_rank, batch_size)
        if split == "train" and drops_ragged_batch(per_rank, batch_size):
            return full
        return full + (ragged > 0)


def drops_ragged_batch(images: int, batch_size: int) -> bool:
    """A training epoch drops its ragged last batch once there are four full ones; a small set
    keeps it, or 96 images at batch 64 would train on 64 of them an epoch."""
    return images >= 4 * batch_size


def _indices(n: int, *, shuffle: bool, generator: torch.Generator, rank: int, world_size: int, seed: int,
             epoch: int) -> torch.Tensor:
    if world_size > 1:
        if shuffle:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
            sampler.set_epoch(epoch)
            return torch.tensor(list(sampler), dtype=torch.long)
        return torch.arange(rank, n, world_size)
    return torch.randperm(n, generator=generator) if shuffle else torch.arange(n)


def check_classes(classes: list[str], where: str) -> None:
    """A classifier needs two classes or more."""
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise SqueezelabError(f"{where} has {found} as classes; a classifier needs at least 2 class folders/labels")


def stats_preprocessing(images: torch.Tensor, image_size: int) -> Preprocessing:
    """Normalisation computed from the training images (per-channel mean/std in [0, 1] units)."""
    x = images[: 20000].float().div_(255.0)
    mean = tuple(round(float(v), 4) for v in x.mean(dim=(0, 2, 3)))
    std = tuple(round(max(float(v), 1e-3), 4) for v in x.std(dim=(0, 2, 3)))
    return Preprocessing(mean=mean, std=std, resize=image_size, crop=image_size)
