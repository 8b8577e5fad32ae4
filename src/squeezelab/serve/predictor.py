"""One face for every model file the service can serve: PyTorch (.pt, .sqz) or ONNX Runtime (.onnx).

The preprocessing (resize, crop, mean/std, channel order) comes from the file itself: the
checkpoint's record or the ONNX metadata that `squeezelab export` wrote, so a served model is fed
exactly what it was trained on.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from squeezelab.preprocessing import TORCHVISION_IMAGENET, Preprocessing


@dataclasses.dataclass
class Predictor:
    """Images in, class probabilities out; `info` is what GET /model shows."""

    name: str
    kind: str  # "pytorch" or "onnx"
    classes: list[str]
    preprocessing: Preprocessing
    size_bytes: int
    num_params: int | None
    _run: object  # float32 (N, 3, H, W) numpy -> logits numpy

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        logits = np.asarray(self._run(batch), dtype=np.float64)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def batch_from_images(self, images: Sequence) -> np.ndarray:
        return self.preprocessing.images_to_batch(list(images)).numpy()

    def top_k(self, images: Sequence, k: int = 5) -> list[list[dict]]:
        """For each PIL image, the k most likely classes as {index, label, probability}."""
        probs = self.probabilities(self.batch_from_images(images))
        k = max(1, min(k, probs.shape[1]))
        results = []
        for row in probs:
            order = np.argsort(-row)[:k]
            results.append([{"index": int(i), "label": self.classes[i] if i < len(self.classes) else str(i),
                             "probability": float(row[i])} for i in order])
        return results

    def info(self) -> dict:
        return {"name": self.name, "format": self.kind, "num_classes": len(self.classes), "classes": self.classes,
                "size_bytes": self.size_bytes, "params": self.num_params, "input_size": self.preprocessing.crop,
                "preprocessing": self.preprocessing.to_dict()}


def predictor_from_module(model: torch.nn.Module, *, name: str | None = None, size_bytes: int = 0) -> Predictor:
    model = model.eval().float().to(memory_format=torch.channels_last)  # about 2x NCHW on this CPU

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
            return model(x).float().numpy()

    classes = list(getattr(model, "classes", None) or [str(i) for i in range(model.num_classes)])
    label = name or getattr(model, "registry_name", None) or getattr(getattr(model, "model_config", None), "name", "model")
    return Predictor(label, "pytorch", classes, getattr(model, "preprocessing", None) or TORCHVISION_IMAGENET,
                     size_bytes, sum(p.numel() for p in model.parameters()), run)


def open_predictor(path: str | os.PathLike, *, threads: int | None = None) -> Predictor:
    """A .pt checkpoint, .sqz file (via `squeezelab.load_model`) or .onnx file, ready to serve."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from squeezelab.export.onnx import load_onnx

        onnx_model = load_onnx(path, threads=threads)
        return Predictor(onnx_model.name, "onnx", onnx_model.classes, onnx_model.preprocessing,
                         path.stat().st_size, onnx_model.num_params, onnx_model)
    from squeezelab.loading import load_model

    model = load_model(path)
    if threads:
        torch.set_num_threads(threads)
    return predictor_from_module(model, name=getattr(getattr(model, "model_config", None), "name", None) or path.stem,
                                 size_bytes=path.stat().st_size)
