"""`open_dataset(DataConfig) -> Dataset`: picks the reader for a data spec.

Small images (digits, synthetic, CIFAR, folders of images <= 64 px) live in one uint8 tensor;
larger photos stream from files through worker processes (see `files.py`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from squeezelab.data.config import ALL_IMAGES, DataConfig, evaluation_config, same_source
from squeezelab.data.dataset import Dataset, check_classes, stats_preprocessing
from squeezelab.data.split import stratified_split
from squeezelab.data.tensor_split import Augment, TensorSplit
from squeezelab.errors import SqueezelabError
from squeezelab.preprocessing import Preprocessing


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
    if (folder := _folder(spec)) is not None:
        from squeezelab.data.files import open_folder

        return open_folder(config, folder)
    if not path.exists():
        raise SqueezelabError(
            f"data {spec!r} not found: pass digits, synthetic, cifar10:ROOT, cifar100:ROOT, a folder with one "
            "sub-folder per class, or a .txt list of 'path label' lines"
        )
    raise SqueezelabError(f"data {spec!r} is a file but not a .txt list file; pass a folder or a list of 'path label' lines")


def _folder(spec: str) -> Path | None:
    """The folder a spec names, or None: the one rule `open_dataset` and the result stores share.
    Built-in names and prefixes come first, so a folder called "digits" in the working directory
    does not shadow the built-in set."""
    if spec in ("digits", "synthetic") or spec.startswith(("synthetic:", "cifar10:", "cifar100:")) \
            or spec.lower().endswith(".txt"):
        return None
    path = Path(spec).expanduser()
    return path if path.is_dir() else None


def default_side(spec: str) -> int:
    """The side `open_dataset(spec)` trains at without --image-size, reading only the headers of a
    sample of a folder's training images, so commands that choose models by image size (compare's
    small-image stems) decide before anything is decoded; other specs are opened."""
    folder = _folder(spec)
    if folder is not None:
        from squeezelab.data.files import default_image_size, training_images

        files = training_images(folder)
        if files:
            return default_image_size(files)
    return open_dataset(DataConfig(spec)).image_size


def data_identity(spec: str) -> str | dict:
    """A data spec as result stores record it: a folder by its name and contents (`files.folder_identity`),
    so the same images under another path count as the same data; any other spec as given."""
    folder = _folder(spec)
    if folder is None:
        return spec
    from squeezelab.data.files import folder_identity

    return folder_identity(folder)


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


def _tensor_dataset(config: DataConfig, images: torch.Tensor, labels: torch.Tensor, classes: list[str],
                    augment: Augment) -> Dataset:
    """Split (or replay the recorded split of) one tensor data set."""
    if config.split != ALL_IMAGES:  # measuring a model on one class is fine; training needs two
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
    config = config.replace(image_size=images.shape[-1], split=ALL_IMAGES if config.split == ALL_IMAGES else {"val": val})
    train_t, val_t = torch.tensor(train, dtype=torch.long), torch.tensor(val, dtype=torch.long)
    preprocessing = stats_preprocessing(images[train_t], images.shape[-1])
    return Dataset(config, classes, preprocessing, TensorSplit(images[train_t], labels[train_t]),
                   TensorSplit(images[val_t], labels[val_t]), augment)


def open_recorded_dataset(recorded: dict | None, data_spec: str | None, *, classes: list[str], preprocessing: Preprocessing,
                          where: str, skip_bad_images: bool = False, held_out: bool = False) -> Dataset:
    """The data a model file records (with its validation split), or `data_spec` instead, in the
    model's normalisation: what eval and compress measure on, so before/after figures compare
    like with like. `recorded` is the DataConfig dict a checkpoint or .sqz header holds.

    held_out (eval): data other than the recorded is measured whole (`evaluation_config`), since
    none of it was trained on; otherwise (compress) it is split, to fine-tune on one part."""
    if data_spec is None and not recorded:
        raise SqueezelabError(f"{where} records no data set; pass --data with a folder of labelled images (one "
                              "sub-folder per class) or a data spec such as digits")
    if held_out:
        config = evaluation_config(recorded, data_spec, image_size=preprocessing.crop, skip_bad_images=skip_bad_images)
    elif recorded and (data_spec is None or same_source(data_spec, recorded.get("spec", ""))):
        config = DataConfig.from_dict({**recorded, "skip_bad_images": skip_bad_images or recorded.get("skip_bad_images", False)})
    else:
        config = DataConfig(data_spec, image_size=preprocessing.crop, skip_bad_images=skip_bad_images)
    data = open_dataset(config)
    if not held_out and list(data.classes) != list(classes):  # eval matches classes by name or id instead
        raise SqueezelabError(f"the data's classes {list(data.classes)[:5]} differ from the model's {list(classes)[:5]}; "
                              "use the data the model was trained on, or data with the same class names")
    data.preprocessing = preprocessing  # the model's recorded normalisation, not the data's
    return data
