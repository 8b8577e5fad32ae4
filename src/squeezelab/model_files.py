"""The registry of model file formats, and the `Predictor` every format opens into.

Two registries keyed by file suffix: a *model* loader returns a torch module carrying its
`ModelRecord` (.pt checkpoints, .sqz files); a *predictor* loader returns a `Predictor` for
formats run by another engine (.onnx by ONNX Runtime, .pte by ExecuTorch, .tflite by LiteRT).
This module sits low in the layers (just above `models`) and imports no format: each format's
module registers its own loader when it is imported (`register_predictor_loader(".pte")`), and
`squeezelab.loading`, above them all, imports every format module and opens files by looking
them up here, so arrows point one way: format -> this registry, loading -> formats.

>>> @register_predictor_loader(".xyz")                                  # doctest: +SKIP
... def open_xyz(path, threads): return Predictor(record, "xyz", run)
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
