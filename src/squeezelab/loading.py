"""Open any model file squeezelab writes, by what the file is.

`load_model` is what `eval`, `predict`, `export`, `serve` and `compress` call, so every command
accepts the same files: a training checkpoint (.pt) today, and each new file format registers a
loader here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from torch import nn

from squeezelab.errors import SqueezelabError

# suffix -> function(path) -> nn.Module with .classes and .preprocessing set
LOADERS: dict[str, Callable[[Path], nn.Module]] = {}


def register_loader(suffix: str):
    def add(loader: Callable[[Path], nn.Module]):
        LOADERS[suffix] = loader
        return loader

    return add


@register_loader(".pt")
def _load_checkpoint_file(path: Path) -> nn.Module:
    from squeezelab.train.checkpoint import load_checkpoint, model_from_checkpoint

    return model_from_checkpoint(load_checkpoint(path))


@register_loader(".sqz")
def _load_compressed_file(path: Path) -> nn.Module:
    from squeezelab.compress.codec import load

    return load(path)


def load_model(path: str | os.PathLike) -> nn.Module:
    """The runnable model in `path`, in eval mode, with `.classes` and `.preprocessing`."""
    path = Path(path)
    if not path.exists():
        raise SqueezelabError(f"model file {path} does not exist")
    loader = LOADERS.get(path.suffix.lower()) or LOADERS.get(".pt" if path.suffix.lower() == ".pth" else "")
    if loader is None:
        raise SqueezelabError(f"{path}: unknown model file type {path.suffix!r}; expected one of {sorted(LOADERS)}")
    return loader(path)
