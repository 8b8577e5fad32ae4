"""Open any model file squeezelab writes, by what the file is: `load_predictor`, `load_model`.

The registry and the `Predictor` live in `squeezelab.model_files`, low in the layers; the formats
register themselves there when imported (.pte by `export.executorch`, .tflite by
`export.litert`). This module imports every format module, so the registry is full whenever
something opens a file through it, and holds the loaders of the formats whose modules predate the
registry (.pt, .sqz, .onnx, .xml, .param). Nothing below imports it: eval, predict, serve and
bench open files from above.

>>> predictor = load_predictor("runs/digits/best.pt")                  # doctest: +SKIP
>>> predictor.record.classes, predictor.predict_logits(batch).shape    # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from squeezelab.compress.codec import load as load_sqz
from squeezelab.errors import SqueezelabError
from squeezelab.export import executorch as _executorch  # noqa: F401  (registers .pte)
from squeezelab.export import litert as _litert  # noqa: F401  (registers .tflite)
from squeezelab.export.ncnn import load_ncnn
from squeezelab.export.onnx import load_onnx
from squeezelab.export.openvino import load_openvino
from squeezelab.models.registry import model_of_weights
from squeezelab.model_files import (MODEL_LOADERS, PREDICTOR_LOADERS, SUFFIX_ALIASES, Predictor, predictor_from_module,
                                    register_loader, register_predictor_loader)
from squeezelab.train.checkpoint import load_checkpoint, model_from_checkpoint

__all__ = ["Predictor", "load_model", "load_predictor", "predictor_from_module", "register_loader",
           "register_predictor_loader"]


@register_loader(".pt")
def _load_checkpoint_file(path: Path) -> nn.Module:
    checkpoint = load_checkpoint(path)
    model = model_from_checkpoint(checkpoint)
    if isinstance(checkpoint.get("data"), dict):  # the run's data, as a .sqz keeps it, so eval finds it
        model.record = model.record.replace(notes={**model.record.notes, "data": checkpoint["data"]})
    return model


@register_loader(".sqz")
def _load_compressed_file(path: Path) -> nn.Module:
    return load_sqz(path)


@register_predictor_loader(".onnx")
def _load_onnx_file(path: Path, threads: int | None) -> Predictor:
    onnx_model = load_onnx(path, threads=threads)
    return Predictor(onnx_model.record, "onnx", lambda batch: torch.from_numpy(onnx_model(batch.contiguous().numpy())),
                     path.stat().st_size, onnx_model.num_params)


def _with_bin_file(path: Path, kind: str, model) -> Predictor:
    """A runtime model whose weights sit beside it in a .bin file (OpenVINO, ncnn): numpy in, numpy out."""
    size = path.stat().st_size + path.with_suffix(".bin").stat().st_size
    return Predictor(model.record, kind, lambda batch: torch.from_numpy(model(batch.numpy())), size, model.num_params)


@register_predictor_loader(".xml")
def _load_openvino_file(path: Path, threads: int | None) -> Predictor:
    return _with_bin_file(path, "openvino", load_openvino(path, threads=threads))


@register_predictor_loader(".param")
def _load_ncnn_file(path: Path, threads: int | None) -> Predictor:
    return _with_bin_file(path, "ncnn", load_ncnn(path, threads=threads))


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return SUFFIX_ALIASES.get(suffix, suffix)


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise SqueezelabError(f"model file {path} does not exist (or name shipped weights: {', '.join(_SHIPPED)})")
    return path


_SHIPPED = ("DC_IMAGENET1K",)  # weights records that need no file: `squeezelab predict DC_IMAGENET1K photo.jpg`


def _unknown(path: Path) -> SqueezelabError:
    known = sorted({*MODEL_LOADERS, *PREDICTOR_LOADERS})
    return SqueezelabError(f"{path}: unknown model file type {path.suffix!r}; expected one of {known}")


def load_model(path: str | os.PathLike) -> nn.Module:
    """The torch module in `path` (.pt, .sqz), or of a weights record (`DC_IMAGENET1K`), in eval
    mode, carrying its `ModelRecord` as `.record`."""
    if (model := model_of_weights(path)) is not None:
        return model
    path = _existing(path)
    suffix = _suffix(path)
    if suffix in PREDICTOR_LOADERS and suffix not in MODEL_LOADERS:
        raise SqueezelabError(f"{path}: {path.suffix!r} files hold no PyTorch model; open them with load_predictor")
    if suffix not in MODEL_LOADERS:
        raise _unknown(path)
    return MODEL_LOADERS[suffix](path)


def load_predictor(path: str | os.PathLike, *, threads: int | None = None) -> Predictor:
    """Any model file (.pt, .sqz, .onnx, ...) ready for inference; `threads` caps the engine's
    intra-op threads (for PyTorch: the process-wide torch setting). A weights record
    (`DC_IMAGENET1K`) opens as its PyTorch model."""
    if (model := model_of_weights(path)) is not None:
        if threads:
            torch.set_num_threads(threads)
        return predictor_from_module(model)
    path = _existing(path)
    suffix = _suffix(path)
    if suffix in PREDICTOR_LOADERS:
        return PREDICTOR_LOADERS[suffix](path, threads)
    if suffix not in MODEL_LOADERS:
        raise _unknown(path)
    model = MODEL_LOADERS[suffix](path)
    if threads:
        torch.set_num_threads(threads)
    return predictor_from_module(model, size_bytes=path.stat().st_size)
