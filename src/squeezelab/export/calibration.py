"""Real images for int8 calibration and parity checks, from a user's data spec.

Static quantization picks each activation's int8 range from the values it sees while running
calibration images; random tensors give ranges real photos never have (ONNX Runtime's guide asks
for representative data), so calibration always reads real images: an image file, a folder of
images (searched recursively, in sorted order and round-robin over sub-folders, so a run is
repeatable and sees every class; labels are not needed), or any other data spec that
`squeezelab.data` understands (digits, cifar10:ROOT, a .txt list), in the model's normalisation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import torch

from squeezelab.data.images import IMAGE_EXTENSIONS, is_candidate
from squeezelab.errors import SqueezelabError
from squeezelab.preprocessing import Preprocessing


def image_files(spec: str | os.PathLike, limit: int) -> list[Path]:
    """Up to `limit` image paths from a file or a folder, spread over its sub-folders (classes)."""
    path = Path(spec)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SqueezelabError(f"calibration data {spec} is neither an image file nor a folder; pass a folder of images")
    by_folder: dict[Path, list[Path]] = {}
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if is_candidate(Path(name)):
                by_folder.setdefault(Path(root), []).append(Path(root) / name)
    # round-robin over folders so that a class-per-folder data set calibrates on every class
    queues = [iter(files) for _, files in sorted(by_folder.items())]
    picked: list[Path] = []
    while queues and len(picked) < limit:
        for queue in list(queues):
            item = next(queue, None)
            if item is None:
                queues.remove(queue)
            elif len(picked) < limit:
                picked.append(item)
    if not picked:
        raise SqueezelabError(f"no images found under {spec}; calibration needs real images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return picked


def _renormalize(batch: torch.Tensor, source: Preprocessing, target: Preprocessing) -> torch.Tensor:
    """Undo `source.normalize` back to 0-255 RGB pixels, then apply `target`'s normalisation."""
    if source == target:
        return batch
    mean = torch.tensor(source.mean).view(1, -1, 1, 1)
    std = torch.tensor(source.std).view(1, -1, 1, 1)
    pixels = (batch * std + mean) * (255.0 / source.pixel_range)
    if source.channel_order == "BGR":
        pixels = pixels.flip(1)
    return target.normalize(pixels.clamp(0, 255))


def _data_spec_batches(spec: str, preprocessing: Preprocessing, limit: int, batch_size: int) -> list[torch.Tensor]:
    """Training images of a `squeezelab.data` spec (digits, synthetic, cifar10:ROOT, a .txt list),
    at the model's input size and in its normalisation."""
    from squeezelab.data import DataConfig, open_dataset

    dataset = open_dataset(DataConfig(spec, image_size=preprocessing.crop))
    batches, count = [], 0
    for images, _ in dataset.batches("train", batch_size, train=False, shuffle=True):  # every class, not the first
        batches.append(_renormalize(images, dataset.preprocessing, preprocessing)[: limit - count])
        count += len(batches[-1])
        if count >= limit:
            break
    if not batches:
        raise SqueezelabError(f"calibration data {spec} has no training images")
    return batches


def calibration_batches(spec: str | os.PathLike, preprocessing: Preprocessing, *, limit: int = 256,
                        batch_size: int = 16) -> list[torch.Tensor]:
    """Preprocessed float batches from up to `limit` real images named by `spec`."""
    from PIL import Image

    if not Path(spec).exists() or str(spec).lower().endswith(".txt"):
        return _data_spec_batches(str(spec), preprocessing, limit, batch_size)
    images = []
    for file in image_files(spec, limit):
        try:
            with Image.open(file) as image:
                images.append(preprocessing.image_to_uint8(image))
        except (OSError, ValueError):
            continue  # a broken file among many photos: calibrate on the rest
    if not images:
        raise SqueezelabError(f"none of the images under {spec} could be read")
    stacked = torch.stack(images)
    return [preprocessing.normalize(stacked[i:i + batch_size]) for i in range(0, len(stacked), batch_size)]


def labelled_batches(folder: str | os.PathLike, preprocessing: Preprocessing, *, limit: int,
                     batch_size: int = 32) -> tuple[list[torch.Tensor], torch.Tensor, list[str]]:
    """Batches, labels and class names from a class-per-folder tree (for accuracy checks)."""
    from PIL import Image

    root = Path(folder)
    files = image_files(root, limit)
    classes = sorted({f.relative_to(root).parts[0] for f in files if len(f.relative_to(root).parts) > 1})
    if not classes:
        raise SqueezelabError(f"{folder} has no class folders; expected FOLDER/<class>/<image>")
    images, labels = [], []
    for file in files:
        parts = file.relative_to(root).parts
        if len(parts) < 2:
            continue
        with Image.open(file) as image:
            images.append(preprocessing.image_to_uint8(image))
        labels.append(classes.index(parts[0]))
    stacked = torch.stack(images)
    batches = [preprocessing.normalize(stacked[i:i + batch_size]) for i in range(0, len(stacked), batch_size)]
    return batches, torch.tensor(labels), classes


def iterate_arrays(batches: list[torch.Tensor], input_name: str) -> Iterator[dict]:
    for batch in batches:
        yield {input_name: batch.numpy()}
