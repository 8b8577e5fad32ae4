"""`open_dataset(DataConfig) -> Dataset`: one face for every kind of data.

A `Dataset` has `classes`, a `preprocessing` (the normalisation, recorded in checkpoints), a
`train` and a `val` split, and `batches(...)`, which yields normalised float tensors and labels:
augmented for training, plain for evaluation. Small images (digits, synthetic, CIFAR, folders of
images <= 64 px) live in one uint8 tensor; larger photos stream from files through worker
processes (see `files.py`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Iterator

import torch

from squeezelab.data.config import ALL_IMAGES, DataConfig
from squeezelab.data.split import stratified_split
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
                workers: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Normalised float batches (N, 3, S, S) and int64 labels of `split` ("train" or "val").

        train (default: split == "train") shuffles with seed + epoch and augments; evaluation
        batches keep the file order. Under data-parallel training each rank gets every
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
        indices = _indices(len(part), train=train, generator=generator, rank=rank, world_size=world_size,
                           seed=seed, epoch=epoch)
        if train and (drop_last if drop_last is not None else len(indices) > batch_size):
            indices = indices[: len(indices) // batch_size * batch_size]
        augment = self.augment if train else None
        if isinstance(part, TensorSplit):
            source = part.batches(indices, batch_size, augment=augment, generator=generator)
        else:
            source = part.batches(indices, batch_size, train=train, generator=generator, workers=workers)
        for images, labels in source:
            yield self.preprocessing.normalize(images), labels


def _indices(n: int, *, train: bool, generator: torch.Generator, rank: int, world_size: int, seed: int,
             epoch: int) -> torch.Tensor:
    if world_size > 1:
        if train:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
            sampler.set_epoch(epoch)
            return torch.tensor(list(sampler), dtype=torch.long)
        return torch.arange(rank, n, world_size)
    return torch.randperm(n, generator=generator) if train else torch.arange(n)


def open_dataset(config: DataConfig | str = DataConfig()) -> Dataset:
    """Open the data named by `config.spec` (see `DataConfig`); errors name the path and the fix.

    >>> data = open_dataset(DataConfig("digits"))
    >>> data.num_classes, len(data.train) + len(data.val)
    (10, 1797)
    """
    if isinstance(config, str):
        config = DataConfig(config)
    spec = config.spec
    if spec == "digits":
        from squeezelab.data.digits import load_digits_tensor

        images, labels, classes = load_digits_tensor(config.image_size or 16)
        return _tensor_dataset(config, images, labels, classes, Augment(pad=max(1, (config.image_size or 16) // 8)))
    if spec == "synthetic" or spec.startswith("synthetic:"):
        from squeezelab.data.digits import load_synthetic_tensor

        options = _options(spec.partition(":")[2], {"n": 256, "classes": 4, "size": config.image_size or 32})
        images, labels, classes = load_synthetic_tensor(options["n"], options["classes"], options["size"], config.seed)
        return _tensor_dataset(config.replace(image_size=options["size"]), images, labels, classes, Augment(pad=2))
    if spec.startswith(("cifar10:", "cifar100:")):
        from squeezelab.data.cifar import open_cifar

        return open_cifar(config)
    path = Path(spec).expanduser()
    if spec.lower().endswith(".txt"):
        from squeezelab.data.files import open_list_file

        return open_list_file(config, path)
    if path.is_dir():
        from squeezelab.data.files import open_folder

        return open_folder(config, path)
    if not path.exists():
        raise SqueezelabError(
            f"data {spec!r} not found: pass digits, synthetic, cifar10:ROOT, cifar100:ROOT, a folder with one "
            "sub-folder per class, or a .txt list of 'path label' lines"
        )
    raise SqueezelabError(f"data {spec!r} is a file but not a .txt list file; pass a folder or a list of 'path label' lines")


def _options(text: str, defaults: dict) -> dict:
    options = dict(defaults)
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in defaults or not value.isdigit():
            raise SqueezelabError(f"bad data option {item!r}; use e.g. synthetic:n=256,classes=4,size=32")
        options[key] = int(value)
    if options["classes"] < 2 or options["n"] < 2 * options["classes"]:
        raise SqueezelabError("synthetic data needs classes >= 2 and n >= 2 * classes")
    return options


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


def _tensor_dataset(config: DataConfig, images: torch.Tensor, labels: torch.Tensor, classes: list[str],
                    augment: Augment) -> Dataset:
    """Split (or replay the recorded split of) one tensor data set."""
    check_classes(classes, config.spec)
    if config.split == ALL_IMAGES:  # evaluation only: every image, the training split the same
        train = val = list(range(len(labels)))
    elif config.split and "val" in config.split:
        val = [int(i) for i in config.split["val"]]
        if val and (min(val) < 0 or max(val) >= len(labels)):
            raise SqueezelabError(f"the recorded split of {config.spec!r} does not fit this data ({len(labels)} images)")
        val_set = set(val)
        train = [i for i in range(len(labels)) if i not in val_set]
    else:
        train, val = stratified_split(labels.tolist(), config.val_fraction, config.seed)
    config = config.replace(image_size=images.shape[-1], split={"val": val})
    train_t, val_t = torch.tensor(train, dtype=torch.long), torch.tensor(val, dtype=torch.long)
    preprocessing = stats_preprocessing(images[train_t], images.shape[-1])
    return Dataset(config, classes, preprocessing, TensorSplit(images[train_t], labels[train_t]),
                   TensorSplit(images[val_t], labels[val_t]), augment)
