"""Image folders and list files: a user's own photos.

Folder layout: `root/<class>/*.jpg|png|...`; when `root/train` and `root/val` exist they are the
two splits (their class folders must match); with `root/train` and `root/test` only, the
validation split is held out of train/ and test/ stays unseen; otherwise a seeded stratified
split is made. A split made here is recorded (relative paths) in the run's DataConfig. A list file has one
`path label` line per image (paths relative to the list file; label an integer index or a class
name; `#` comments and blank lines are ignored).

Every image is decoded once when the data set is opened, so a corrupt, truncated or non-image
file stops the run before training with one line naming it (or is skipped and counted with
`skip_bad_images`). Small images (<= 64 px, like CIFAR's JPEGs) are then kept in one uint8
tensor and augmented in batches; larger photos are re-read by DataLoader worker processes with
torchvision transforms (random resized crop + flip for training, resize + centre crop otherwise).
Hidden files, .DS_Store, Thumbs.db and files without an image extension are ignored; directory
symlinks are followed once (a link back up the tree is not followed again).
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import torch

from squeezelab.data.config import ALL_IMAGES, DataConfig
from squeezelab.data.dataset import Dataset, check_classes, stats_preprocessing
from squeezelab.data.images import BadImageError, image_files, open_image
from squeezelab.data.split import stratified_split
from squeezelab.data.tensor_split import Augment, TensorSplit
from squeezelab.errors import SqueezelabError
from squeezelab.preprocessing import TORCHVISION_IMAGENET, Preprocessing
from squeezelab.runtime import available_cores

FOLDER_IMAGE_SIZE = 128  # default side for photo folders: affordable on a CPU, enough for fine-tuning
TENSOR_MAX_SIZE = 64  # images this small are decoded into one tensor


def scan_class_folders(root: Path) -> list[tuple[Path, str]]:
    """(file, class name) for every candidate image under `root/<class>/`, sorted."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [(path, name) for name in classes for path in image_files([root / name])]


def split_folders(root: Path) -> tuple[Path, Path] | None:
    """(train/, the held-out folder) when `root` holds train/ and val/ (or test/ without val/), the
    layouts read as ready-made splits; None when `root` is one folder of class folders, where a
    class may well be called "train" (CIFAR-100 has one)."""
    held_out = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    return (root / "train", held_out) if (root / "train").is_dir() and held_out is not None else None


def training_images(root: Path) -> list[Path]:
    """The images `open_folder` trains and validates on: train/ (+ val/), or every class folder."""
    splits = split_folders(root)
    if splits is None:
        return [path for path, _ in scan_class_folders(root)]
    train, held_out = splits
    return [path for part in ([train, held_out] if held_out.name == "val" else [train])
            for path, _ in scan_class_folders(part)]


def folder_identity(root: Path) -> dict:
    """What names an image folder wherever it lies: its name and, for each split folder (train/,
    val/, test/, or the folder itself), how many classes and images it holds. Result stores record
    this rather than the path, so a store made in one home folder resumes in another."""
    parts = [n for n in ("train", "val", "test") if (root / n).is_dir()] if split_folders(root) else ["."]
    counts = {}
    for name in parts:
        items = scan_class_folders(root / name)
        counts[name] = {"classes": len({c for _, c in items}), "images": len(items)}
    return {"folder": root.resolve().name, "splits": counts}


def open_folder(config: DataConfig, root: Path) -> Dataset:
    """train/ + val/: the two splits. train/ + test/ (no val/): the validation split is held out of
    train/ (seeded, recorded), so choosing best.pt never looks at the test images; measure those
    with `squeezelab eval CKPT --data ROOT/test`. Otherwise a split of the class folders."""
    splits = split_folders(root)
    if splits is not None:
        train_root, held_out = splits
        train_items, held_out_items = scan_class_folders(train_root), scan_class_folders(held_out)
        train_classes = _matching_classes(train_items, train_root, held_out_items, held_out)
        if held_out.name == "test":
            return _split_and_build(config, train_items, train_classes, root)
        return _build(config, train_items, held_out_items, train_classes, root, recorded_split=None)
    items = scan_class_folders(root)
    _check_items(items, root, evaluation=config.split == ALL_IMAGES)
    classes = sorted({c for _, c in items})
    return _split_and_build(config, items, classes, root)


def _matching_classes(train_items, train_root: Path, held_out_items, held_out: Path) -> list[str]:
    """The class names, once train/ and its held-out sibling are checked to hold the same ones."""
    train_classes = sorted({c for _, c in train_items})
    held_out_classes = sorted({c for _, c in held_out_items})
    if train_classes != held_out_classes:
        only_train = sorted(set(train_classes) - set(held_out_classes))
        only_held_out = sorted(set(held_out_classes) - set(train_classes))
        raise SqueezelabError(
            f"class folders differ between {train_root} and {held_out} (only in train: {only_train}, only in "
            f"{held_out.name}: {only_held_out}); give both the same class folders"
        )
    _check_items(train_items, train_root)
    _check_items(held_out_items, held_out)
    return train_classes


def open_list_file(config: DataConfig, path: Path) -> Dataset:
    if not path.is_file():
        raise SqueezelabError(f"list file {path} does not exist; pass a .txt file of 'path label' lines")
    base = path.parent
    rows: list[tuple[Path, str]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise SqueezelabError(f"list file {path} is not UTF-8 text; write one 'path label' line per image") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise SqueezelabError(f"{path} line {number}: expected 'path label', got {line!r}")
        file, label = Path(parts[0]), parts[1]
        file = file if file.is_absolute() else base / file
        if not file.exists() and not file.is_symlink():
            raise SqueezelabError(f"{path} line {number}: image {file} does not exist; fix the path (relative to "
                                  f"{base})")
        rows.append((file, label))
    if not rows:
        raise SqueezelabError(f"list file {path} has no 'path label' lines")
    numeric = [label.lstrip("-").isdigit() for _, label in rows]
    if any(numeric) and not all(numeric):
        bad = next(label for (_, label), is_num in zip(rows, numeric) if not is_num)
        raise SqueezelabError(f"{path}: labels mix numbers and names (e.g. {bad!r}); use one kind")
    if all(numeric):
        values = sorted({int(label) for _, label in rows})
        if values[0] < 0:
            raise SqueezelabError(f"{path}: label {values[0]} is negative; labels are class indices >= 0")
        classes = [str(v) for v in range(values[-1] + 1)]
        rows = [(f, str(int(label))) for f, label in rows]
    else:
        classes = sorted({label for _, label in rows})
    return _split_and_build(config, rows, classes, base)


def _check_items(items, root: Path, evaluation: bool = False) -> None:
    """Images there, and (to train on) at least two classes; measuring a model on one class is fine."""
    if not items:
        raise SqueezelabError(f"{root} holds no images; expected {root}/<class>/<image>.jpg|png|... files")
    if not evaluation:
        check_classes(sorted({c for _, c in items}), str(root))


def _split_and_build(config: DataConfig, items, classes, base: Path):
    if config.split == ALL_IMAGES:  # evaluation: every image, one class is enough
        train_items, val_items = [], list(items)
    elif config.split and "val" in config.split:
        check_classes(classes, config.spec)
        wanted = set(config.split["val"])
        val_items = [it for it in items if _relative(it[0], base) in wanted]
        train_items = [it for it in items if _relative(it[0], base) not in wanted]
    else:
        check_classes(classes, config.spec)
        index = {c: i for i, c in enumerate(classes)}
        train_idx, val_idx = stratified_split([index[c] for _, c in items], config.val_fraction, config.seed)
        train_items, val_items = [items[i] for i in train_idx], [items[i] for i in val_idx]
    return _build(config, train_items, val_items, classes, base, recorded_split=True)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def default_image_size(paths: list[Path], probe: int = 64) -> int:
    """The side to train at when --image-size is not given: a folder of small images (CIFAR-10's
    32x32) trains at its own size, so it gets the small stem and the decoded-once tensor pipeline
    instead of being upscaled 16x in pixels; photos at FOLDER_IMAGE_SIZE. Only headers are read,
    of up to `probe` images spread over the list; a broken one is left to the full decode."""
    from PIL import Image

    sides = []
    for path in paths[:: max(1, len(paths) // probe)][:probe]:
        try:
            with Image.open(path) as image:
                sides.append(max(image.size))
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
    if sides and max(sides) <= TENSOR_MAX_SIZE:
        return max(MIN_SMALL_IMAGE_SIZE, max(sides))
    return FOLDER_IMAGE_SIZE


MIN_SMALL_IMAGE_SIZE = 16  # tinier images are upscaled to this (digits' 8x8 train at 16x16)


def _decode_all(items, size: int | None, skip_bad: bool, skipped: list[str]):
    """Decode every image once (threads: Pillow releases the GIL); returns kept items and, when
    `size` is set, their uint8 tensors at size x size."""
    prep = Preprocessing(resize=size or 1, crop=size or 1)

    def load(item):
        try:
            image = open_image(item[0])
            return prep.image_to_uint8(image) if size else True
        except BadImageError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        results = list(pool.map(load, items))
    kept, tensors = [], []
    for item, result in zip(items, results):
        if isinstance(result, BadImageError):
            if not skip_bad:
                bad = sum(isinstance(r, BadImageError) for r in results)
                extra = f" ({bad} bad images in all)" if bad > 1 else ""
                raise BadImageError(f"{result}{extra}; fix or remove it, or pass --skip-bad-images")
            skipped.append(str(item[0]))
            continue
        kept.append(item)
        if size:
            tensors.append(result)
    return kept, tensors


def _build(config: DataConfig, train_items, val_items, classes, base: Path, recorded_split) -> Dataset:
    size = config.image_size or default_image_size([path for path, _ in train_items + val_items])
    small = size <= TENSOR_MAX_SIZE
    skipped: list[str] = []
    train_items, train_images = _decode_all(train_items, size if small else None, config.skip_bad_images, skipped)
    val_items, val_images = _decode_all(val_items, size if small else None, config.skip_bad_images, skipped)
    if config.split == ALL_IMAGES:  # evaluation only: the training split is the same images
        train_items, train_images = val_items, val_images
    if not train_items or not val_items:
        raise SqueezelabError(f"{config.spec}: no usable images left in the {'training' if not train_items else 'validation'} "
                              "split; add images or lower --val-fraction")
    index = {c: i for i, c in enumerate(classes)}
    split = {"val": [_relative(p, base) for p, _ in val_items]} if recorded_split else None
    if config.split == ALL_IMAGES:  # recorded as such: which images were measured
        split = ALL_IMAGES
    config = config.replace(image_size=size, split=split)
    if small:
        train = TensorSplit(torch.stack(train_images), torch.tensor([index[c] for _, c in train_items]))
        val = TensorSplit(torch.stack(val_images), torch.tensor([index[c] for _, c in val_items]))
        return Dataset(config, classes, stats_preprocessing(train.images, size), train, val,
                       Augment(pad=max(1, size // 8), flip=True), skipped)
    preprocessing = dataclasses.replace(TORCHVISION_IMAGENET, resize=int(round(size * 256 / 224)), crop=size)
    train = FileSplit([p for p, _ in train_items], [index[c] for _, c in train_items], preprocessing)
    val = FileSplit([p for p, _ in val_items], [index[c] for _, c in val_items], preprocessing)
    return Dataset(config, classes, preprocessing, train, val, None, skipped)


class _Images(torch.utils.data.Dataset):
    def __init__(self, paths, labels, transform):
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform(open_image(self.paths[i])), self.labels[i]


@dataclasses.dataclass
class FileSplit:
    """Photos read from files by worker processes, with torchvision's transforms."""

    paths: list
    labels_list: list
    preprocessing: Preprocessing

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor(self.labels_list)

    def batches(self, indices: torch.Tensor, batch_size: int, *, train: bool, generator: torch.Generator,
                workers: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from torchvision import transforms as T

        size = self.preprocessing.crop
        if train:
            transform = T.Compose([T.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True),
                                   T.RandomHorizontalFlip(), T.PILToTensor()])
        else:
            transform = T.Compose([T.Resize(self.preprocessing.resize, antialias=True), T.CenterCrop(size),
                                   T.PILToTensor()])
        workers = min(4, available_cores()) if workers is None else workers
        loader = torch.utils.data.DataLoader(
            _Images(self.paths, self.labels_list, transform), batch_size=batch_size, sampler=indices.tolist(),
            num_workers=workers, generator=generator, persistent_workers=False,
        )
        for images, labels in loader:
            yield images, labels.long()
