"""Weights as data: where a set of weights lives and the input it expects.

A `Weights` record carries its preprocessing, so a model loaded from converted Caffe weights is fed
BGR 0-255 pixels minus (104, 117, 123) at 227x227, and one from torchvision RGB [0, 1] with the
ImageNet mean/std at 224x224. The paper's own release, `squeezenet1_0.DC_IMAGENET1K` (676 KB), ships
inside the package (`models/pretrained/`, with its BSD licence) and works offline; nothing else is
downloaded unless the user asks for a URL-backed record on a machine with network; a local file
path always works.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from squeezelab.errors import BadFileError, SqueezelabError
from squeezelab.preprocessing import CAFFE_IMAGENET, TORCHVISION_IMAGENET, Preprocessing


@dataclasses.dataclass(frozen=True)
class Weights:
    """Where a state dict comes from and what it needs: preprocessing, classes, reference figures."""

    name: str
    model: str
    url: str | None
    preprocessing: Preprocessing
    num_classes: int = 1000
    num_params: int | None = None
    metrics: dict = dataclasses.field(default_factory=dict)
    note: str = ""
    packaged: str | None = None  # a file in squeezelab/models/pretrained/ that holds the weights
    sha256: str | None = None  # of the packaged file, checked when it is read


WEIGHTS: dict[str, Weights] = {
    w.name: w
    for w in (
        Weights(
            "squeezenet1_0.IMAGENET1K_V1", "squeezenet1_0",
            "https://download.pytorch.org/models/squeezenet1_0-b66bff10.pth",
            TORCHVISION_IMAGENET, num_params=1_248_424, metrics={"acc@1": 58.092, "acc@5": 80.420},
        ),
        Weights(
            "squeezenet1_1.IMAGENET1K_V1", "squeezenet1_1",
            "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
            TORCHVISION_IMAGENET, num_params=1_235_496, metrics={"acc@1": 58.178, "acc@5": 80.624},
        ),
        Weights(
            "squeezenet1_0.CAFFE_IMAGENET1K", "squeezenet1_0", None, CAFFE_IMAGENET,
            num_params=1_248_424, metrics={"acc@1": 57.5, "acc@5": 80.3},
            note="DeepScale/SqueezeNet v1.0 caffemodel converted to a torchvision-layout state dict",
        ),
        Weights(
            "squeezenet1_0.DC_IMAGENET1K", "squeezenet1_0", None, CAFFE_IMAGENET,
            num_params=1_248_424, metrics={"acc@1": 57.5, "acc@5": 80.3, "nonzero_weights": 415_921},
            note="compressed_SqueezeNet.net (675,763 bytes), the SqueezeNet paper's Deep Compression release "
            "(github songhan/SqueezeNet-Deep-Compression, BSD), shipped with squeezelab",
            packaged="compressed_SqueezeNet.net",
            sha256="e4ab6960ae8cd81505e1c2136921201507e930966c53deaf15862a395b3a3261",
        ),
        Weights(
            "squeezenet1_1.CAFFE_IMAGENET1K", "squeezenet1_1", None, CAFFE_IMAGENET,
            num_params=1_235_496,
            note="DeepScale/SqueezeNet v1.1 caffemodel converted to a torchvision-layout state dict",
        ),
    )
}


def resolve_weights(model_name: str, weights, weights_file=None) -> tuple[Weights | None, str | None]:
    """Turn `weights=` (a record, a record name, 'DEFAULT', or a file path) into (record, path).

    `weights_file` gives the local file for a record without a download address, e.g.
    `weights="CAFFE_IMAGENET1K", weights_file="squeezenet1_0_caffe.pth"`.
    """
    if weights_file is not None:
        record = resolve_weights(model_name, weights)[0] if weights is not None else None
        if not Path(weights_file).exists():
            raise SqueezelabError(f"weights file {weights_file} does not exist")
        return record, str(weights_file)
    if weights is None or isinstance(weights, Weights):
        return weights, None
    if isinstance(weights, (str, os.PathLike)):
        text = str(weights)
        if text.upper() == "DEFAULT":
            text = f"{model_name}.IMAGENET1K_V1"
        for key in (text, f"{model_name}.{text}"):
            if key in WEIGHTS:
                return WEIGHTS[key], None
        if Path(text).exists():
            return None, text
        known = ", ".join(k for k in WEIGHTS if k.startswith(model_name + ".")) or "none"
        raise SqueezelabError(
            f"weights {text!r} is neither a file nor a known record for {model_name} (known: {known})"
        )
    raise SqueezelabError(f"weights must be a name, a path or a Weights record, got {type(weights).__name__}")


PACKAGED = Path(__file__).with_name("pretrained")


def packaged_file(weights: Weights) -> Path:
    """The shipped file of `weights`, after checking its SHA-256: a damaged install says so in one
    line instead of decoding garbage into a model that answers nonsense."""
    path = PACKAGED / weights.packaged
    if not path.is_file():
        raise BadFileError(f"{path} is missing from this squeezelab install; reinstall squeezelab")
    if _sha256(path) != weights.sha256:
        raise BadFileError(f"{path} does not match the SHA-256 of {weights.name} (a damaged install); "
                           "reinstall squeezelab")
    return path


@functools.lru_cache(maxsize=8)
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a torchvision-format state dict, a squeezelab checkpoint's weights or the released
    Deep Compression file (.net), safely."""
    if str(path).lower().endswith(".net"):
        from squeezelab.models.released import decode_released_file

        return decode_released_file(path)
    return state_dict_of(load_torch_file(path), path)


def load_torch_file(path: str | os.PathLike):
    """What a .pt/.pth file holds, read without running code from it; one line when it cannot be."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SqueezelabError(f"weights file {path} does not exist") from None
    except Exception as exc:  # torch raises many types for a bad file
        raise BadFileError(f"{path} is not a readable PyTorch weights file ({type(exc).__name__})") from None


def state_dict_of(data, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a loaded weights file: a plain state dict, or a checkpoint's `state_dict`."""
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise BadFileError(f"{path} does not hold a state dict of tensors")
    return data


def load_weights(model: nn.Module, weights: Weights | None, path: str | None, *, strict: bool = True) -> None:
    """Fill `model` from a local file or, for a URL record, torch's download cache."""
    if path is not None:
        state = read_state_dict(path)
    elif weights is not None and weights.packaged is not None:
        state = read_state_dict(packaged_file(weights))
    elif weights is not None and weights.url is not None:
        try:
            state = torch.hub.load_state_dict_from_url(weights.url, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise SqueezelabError(offline_message(weights, exc)) from None
    else:
        raise SqueezelabError(offline_message(weights))
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise SqueezelabError(f"weights do not fit the model: {first}") from None


def offline_message(weights: Weights, exc: Exception | None = None) -> str:
    """One line naming the file a record needs and where to put it when it cannot be fetched."""
    if weights.url is None:
        return (f"{weights.name} has no download address: pass its file as --weights FILE or weights_file=FILE: "
                f"{weights.note or 'a converted state dict'}")
    filename = weights.url.rsplit("/", 1)[-1]
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    return (f"could not fetch {weights.name} ({type(exc).__name__ if exc else 'offline'}): download {weights.url} "
            f"elsewhere and put {filename} in {cache}/ (or pass the file's path)")


def find_weights(name: str, model_name: str | None = None) -> Weights | None:
    """The record `name` means: a full name (`squeezenet1_0.IMAGENET1K_V1`), or a short one
    (`DC_IMAGENET1K`) that one model's records hold or `model_name`'s does; None when none does, one
    line when several models' records share the short name."""
    suffixed = [k for k in WEIGHTS if k.split(".", 1)[1] == name]
    candidates = [name, f"{model_name}.{name}"] + (suffixed if len(suffixed) == 1 else [])
    record = next((WEIGHTS[k] for k in candidates if k in WEIGHTS), None)
    if record is None and len(suffixed) > 1:
        raise SqueezelabError(f"weights {name!r} is ambiguous: name one of {', '.join(suffixed)}")
    return record


def pretrained_state_dict(spec: str | os.PathLike, model_name: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict behind `--weights SPEC`: a file path, or a record name such as
    `squeezenet1_0.IMAGENET1K_V1` or `DC_IMAGENET1K` (downloaded into torch's cache when online).

    >>> len(pretrained_state_dict("DC_IMAGENET1K"))  # shipped with squeezelab: no download
    52
    """
    text = str(spec)
    if Path(text).exists():
        return read_state_dict(text)
    record = find_weights(text, model_name)
    if record is None:
        raise SqueezelabError(f"weights {text!r} is neither a file nor a known record (known: {', '.join(WEIGHTS)})")
    if record.packaged is not None:
        return read_state_dict(packaged_file(record))
    if record.url is None:
        raise SqueezelabError(offline_message(record))
    try:
        return torch.hub.load_state_dict_from_url(record.url, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SqueezelabError(offline_message(record, exc)) from None
