"""Open any model file squeezelab writes, by what the file is.

Two registries keyed by file suffix: a *model* loader returns a torch module carrying its
`ModelRecord` (.pt checkpoints, .sqz files); a *predictor* loader returns a `Predictor` for
formats run by another engine (.onnx by ONNX Runtime; OpenVINO or ncnn register the same way).
`load_predictor` opens every format into the same `Predictor`, so eval, predict, serve and bench
take any of them; `load_model` opens the formats that give a torch module.

>>> predictor = load_predictor("runs/digits/best.pt")                  # doctest: +SKIP
>>> predictor.record.classes, predictor.predict_logits(batch).shape    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from squeezelab.errors import SqueezelabError
from squeezelab.models.rebuild import record_of
from squeezelab.models.record import ModelRecord, RecordFace

MODEL_LOADERS: dict[str, Callable[[Path], nn.Module]] = {}  # suffix -> path -> module with .record
PREDICTOR_LOADERS: dict[str, Callable[[Path, int | None], "Predictor"]] = {}  # suffix -> (path, threads)
LOADERS = MODEL_LOADERS  # the name older code imports
SUFFIX_ALIASES = {".pth": ".pt"}


@dataclasses.dataclass
class Predictor(RecordFace):
    """A model file opened for inference, whatever runs it: its record (classes, preprocessing)
    and a function from a float batch (N, 3, H, W) to logits (N, classes).

    It quacks enough like an eval-mode module (`predictor(x)`, `.eval()`, `.training`, `.device`,
    `.record`) for evaluation loops written for torch models to run on any format.
    """

    record: ModelRecord
    kind: str  # the engine: "pytorch", "onnx", ...
    run: Callable[[torch.Tensor], torch.Tensor]  # float32 CPU batch -> logits (tensor or array)
    size_bytes: int = 0
    num_params: int | None = None
    module: nn.Module | None = None  # the torch module, for formats that give one
    training = False

    @property
    def device(self) -> torch.device:
        params = next(iter(self.module.parameters()), None) if self.module is not None else None
        return params.device if params is not None else torch.device("cpu")

    def predict_logits(self, batch: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Logits for a preprocessed float batch (N, 3, H, W), as a float32 CPU tensor."""
        batch = torch.as_tensor(batch, dtype=torch.float32)
        return torch.as_tensor(self.run(batch)).float().cpu()

    def __call__(self, batch: torch.Tensor | np.ndarray) -> torch.Tensor:
        return self.predict_logits(batch)

    def eval(self) -> "Predictor":
        return self

    def train(self, mode: bool = True) -> "Predictor":
        if mode:
            raise SqueezelabError(f"a {self.kind} predictor cannot be trained; load a .pt or .sqz with load_model")
        return self

    def probabilities(self, batch: torch.Tensor | np.ndarray) -> np.ndarray:
        logits = self.predict_logits(batch).double().numpy()
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def batch_from_images(self, images: Sequence) -> np.ndarray:
        return self.preprocessing.images_to_batch(list(images)).numpy()

    def top_k(self, images: Sequence, k: int = 5) -> list[list[dict]]:
        """For each PIL image, the k most likely classes as {index, label, probability}."""
        return self.top_k_of_batch(self.batch_from_images(images), k)

    def top_k_of_batch(self, batch: torch.Tensor | np.ndarray, k: int = 5) -> list[list[dict]]:
        """`top_k` for a batch already preprocessed (N, 3, H, W)."""
        probs = self.probabilities(batch)
        k = max(1, min(k, probs.shape[1]))
        classes = self.classes
        return [[{"index": int(i), "label": classes[i] if i < len(classes) else str(i), "probability": float(row[i])}
                 for i in np.argsort(-row)[:k]] for row in probs]

    def info(self) -> dict:
        """What the file is: name, engine, classes, size, parameters, input size, preprocessing, provenance."""
        return {"name": self.name, "format": self.kind, "num_classes": self.num_classes, "classes": self.classes,
                "size_bytes": self.size_bytes, "params": self.num_params, "input_size": self.preprocessing.crop,
                "preprocessing": self.preprocessing.to_dict(), "provenance": self.record.provenance.to_dict()}


def predictor_from_module(model: nn.Module, *, size_bytes: int = 0) -> Predictor:
    """A `Predictor` running a torch module (eval mode, float32, channels-last: about 2x NCHW on CPU)."""
    record = record_of(model)
    model = model.eval().float().to(memory_format=torch.channels_last)
    device = next(iter(model.parameters()), torch.empty(0)).device

    def run(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(batch.to(device).contiguous(memory_format=torch.channels_last))

    return Predictor(record, "pytorch", run, size_bytes, sum(p.numel() for p in model.parameters()), model)


def register_loader(suffix: str):
    """Decorator: `loader(path) -> nn.Module` (carrying `.record`) opens files ending in `suffix`."""

    def add(loader: Callable[[Path], nn.Module]):
        MODEL_LOADERS[suffix] = loader
        return loader

    return add


def register_predictor_loader(suffix: str):
    """Decorator: `loader(path, threads) -> Predictor` opens files ending in `suffix` for inference."""

    def add(loader: Callable[[Path, int | None], Predictor]):
        PREDICTOR_LOADERS[suffix] = loader
        return loader

    return add


@register_loader(".pt")
def _load_checkpoint_file(path: Path) -> nn.Module:
    from squeezelab.train.checkpoint import load_checkpoint, model_from_checkpoint

    checkpoint = load_checkpoint(path)
    model = model_from_checkpoint(checkpoint)
    if isinstance(checkpoint.get("data"), dict):  # the run's data, as a .sqz keeps it, so eval finds it
        model.record = model.record.replace(notes={**model.record.notes, "data": checkpoint["data"]})
    return model


@register_loader(".sqz")
def _load_compressed_file(path: Path) -> nn.Module:
    from squeezelab.compress.codec import load

    return load(path)


@register_predictor_loader(".onnx")
def _load_onnx_file(path: Path, threads: int | None) -> Predictor:
    from squeezelab.export.onnx import load_onnx

    onnx_model = load_onnx(path, threads=threads)
    return Predictor(onnx_model.record, "onnx", lambda batch: torch.from_numpy(onnx_model(batch.contiguous().numpy())),
                     path.stat().st_size, onnx_model.num_params)


def _with_bin_file(path: Path, kind: str, model) -> Predictor:
    """A runtime model whose weights sit beside it in a .bin file (OpenVINO, ncnn): numpy in, numpy out."""
    size = path.stat().st_size + path.with_suffix(".bin").stat().st_size
    return Predictor(model.record, kind, lambda batch: torch.from_numpy(model(batch.numpy())), size, model.num_params)


@register_predictor_loader(".xml")
def _load_openvino_file(path: Path, threads: int | None) -> Predictor:
    from squeezelab.export.openvino import load_openvino

    return _with_bin_file(path, "openvino", load_openvino(path, threads=threads))


@register_predictor_loader(".param")
def _load_ncnn_file(path: Path, threads: int | None) -> Predictor:
    from squeezelab.export.ncnn import load_ncnn

    return _with_bin_file(path, "ncnn", load_ncnn(path, threads=threads))


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return SUFFIX_ALIASES.get(suffix, suffix)


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise SqueezelabError(f"model file {path} does not exist")
    return path


def _unknown(path: Path) -> SqueezelabError:
    known = sorted({*MODEL_LOADERS, *PREDICTOR_LOADERS})
    return SqueezelabError(f"{path}: unknown model file type {path.suffix!r}; expected one of {known}")


def load_model(path: str | os.PathLike) -> nn.Module:
    """The torch module in `path` (.pt, .sqz), in eval mode, carrying its `ModelRecord` as `.record`."""
    path = _existing(path)
    suffix = _suffix(path)
    if suffix in PREDICTOR_LOADERS and suffix not in MODEL_LOADERS:
        raise SqueezelabError(f"{path}: {path.suffix!r} files hold no PyTorch model; open them with load_predictor")
    if suffix not in MODEL_LOADERS:
        raise _unknown(path)
    return MODEL_LOADERS[suffix](path)


def load_predictor(path: str | os.PathLike, *, threads: int | None = None) -> Predictor:
    """Any model file (.pt, .sqz, .onnx, ...) ready for inference; `threads` caps the engine's
    intra-op threads (for PyTorch: the process-wide torch setting)."""
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
