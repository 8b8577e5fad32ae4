"""CIFAR-10 and CIFAR-100 from a local folder in the official python-pickle format.

Nothing is downloaded. ROOT holds (or has a `cifar-10-batches-py` / `cifar-100-python` folder
holding) `data_batch_1..5`, `test_batch`, `batches.meta` for CIFAR-10, or `train`, `test`, `meta`
for CIFAR-100, as published at https://www.cs.toronto.edu/~kriz/cifar.html. The test set is the
validation split. The pickles are read with an unpickler that only builds numpy arrays, so a
tampered file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from squeezelab.data.config import DataConfig
from squeezelab.data.dataset import Dataset, stats_preprocessing
from squeezelab.data.tensor_split import Augment, TensorSplit
from squeezelab.errors import BadFileError, SqueezelabError

LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "batches.meta",
                b"labels", b"label_names"),
    "cifar100": ("cifar-100-python", ["train"], "test", "meta", b"fine_labels", b"fine_label_names"),
}


class _NumpyOnly(pickle.Unpickler):
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
        return super().find_class(module, name)


def _read(path: Path, kind: str) -> dict:
    if not path.is_file():
        raise SqueezelabError(f"{kind}: {path} is missing; put the official python-version files "
                              f"({LAYOUT[kind][0]}) in that folder (nothing is downloaded)")
    try:
        with open(path, "rb") as handle:
            data = _NumpyOnly(handle, encoding="bytes").load()
    except Exception as exc:
        raise BadFileError(f"{path} is not a CIFAR python pickle ({type(exc).__name__}); use the official "
                           "'python version' files") from None
    if not isinstance(data, dict):
        raise BadFileError(f"{path} is not a CIFAR batch (expected a dict)")
    return data


def _batch(path: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    data = _read(path, kind)
    label_key = LAYOUT[kind][4]
    images, labels = data.get(b"data"), data.get(label_key)
    if not isinstance(images, np.ndarray) or images.ndim != 2 or images.shape[1] != 3072 or labels is None \
            or len(labels) != len(images):
        raise BadFileError(f"{path} is not a {kind} batch (expected b'data' of shape (N, 3072) and {label_key!r}); "
                           "is it the right data set?")
    return images.astype(np.uint8).reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def open_cifar(config: DataConfig) -> Dataset:
    kind, _, root_text = config.spec.partition(":")
    root = Path(root_text).expanduser()
    if not root.is_dir():
        raise SqueezelabError(f"{kind} root {root} is not a folder; download the python version from "
                              "https://www.cs.toronto.edu/~kriz/cifar.html and pass its folder")
    subfolder, train_files, test_file, meta_file, _, names_key = LAYOUT[kind]
    if (root / subfolder).is_dir():
        root = root / subfolder
    parts = [_batch(root / name, kind) for name in train_files]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    test_x, test_y = _batch(root / test_file, kind)
    meta = _read(root / meta_file, kind)
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(names_key, [])]
    n_classes = 10 if kind == "cifar10" else 100
    if len(classes) != n_classes or train_y.min() < 0 or max(train_y.max(), test_y.max()) >= n_classes:
        raise BadFileError(f"{root}: {meta_file} or the labels do not describe {n_classes} classes; is this {kind}?")
    train = TensorSplit(torch.from_numpy(train_x), torch.from_numpy(train_y))
    val = TensorSplit(torch.from_numpy(test_x), torch.from_numpy(test_y))
    size = config.image_size or 32
    if size != 32:
        train.images = _resize(train.images, size)
        val.images = _resize(val.images, size)
    return Dataset(config.replace(image_size=size, split=None), classes, stats_preprocessing(train.images, size),
                   train, val, Augment(pad=max(1, size // 8), flip=True))


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    x = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True,
                                        align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)
