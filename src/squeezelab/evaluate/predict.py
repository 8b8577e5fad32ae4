"""Running a model: over a data set's batches (`evaluate`, `confusion_sums`) or over image files
(`predict`). The arithmetic on the logits is `evaluate.metrics`.

    >>> import squeezelab
    >>> model = squeezelab.load_model("runs/digits/best.pt")          # doctest: +SKIP
    >>> evaluate(model, open_dataset(DataConfig.from_dict(...))).top1   # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from squeezelab import runtime
from squeezelab.data.images import open_image
from squeezelab.evaluate.metrics import EvalResult, batch_sums, result_from_sums


def confusion_sums(model: nn.Module, batches: Iterable, num_classes: int, *, device: torch.device,
                   speed: runtime.SpeedConfig, flip: bool = False) -> torch.Tensor:
    """One float64 vector: [loss sum, top-5 correct, count, confusion matrix (flattened)].

    A single vector so data-parallel ranks can add theirs with one all_reduce. `flip`: test-time
    augmentation, the logits averaged over each image and its mirror image (twice the compute).
    """
    sums = torch.zeros(3 + num_classes * num_classes, dtype=torch.float64)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for images, labels in batches:
            images = runtime.prepare_batch(images, device, speed)
            logits = model(images)  # fp32, whatever the model trained in: a reported accuracy is the model's
            if flip:
                logits = (logits + model(images.flip(3))) / 2
            sums += batch_sums(logits, labels, num_classes)
    model.train(was_training)
    return sums


def evaluate(model: nn.Module, data, *, split: str = "val", batch_size: int = 256, device: str | None = None,
             speed: runtime.SpeedConfig | None = None, classes: Sequence[str] | None = None,
             rank: int = 0, world_size: int = 1, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
             flip: bool = False) -> EvalResult:
    """Top-1, top-5, loss, per-class accuracy/precision/recall and confusion matrix of `model`: a
    torch module or a `squeezelab.load_predictor` (ONNX, int8, ...), which runs like an eval-mode one.

    data: a `squeezelab.data.Dataset` (its `split` is used, not augmented) or any iterable of
    (normalised images, labels) batches (then `classes`, or `model.record.classes`, names the classes).
    Under data-parallel evaluation pass rank/world_size and `reduce` (an all-reduce of a tensor).
    flip: average the logits of each image and its mirror image (test-time augmentation).

    >>> from squeezelab.data import open_dataset
    >>> from squeezelab import create_model
    >>> data = open_dataset("synthetic:n=16,classes=2")
    >>> model = create_model("squeezenet1_1", num_classes=2, stem="small")
    >>> 0.0 <= evaluate(model, data).top1 <= 1.0
    True
    """
    speed = speed or runtime.SpeedConfig()
    dev = torch.device(device) if device else _device_of(model)
    if hasattr(data, "batches") and hasattr(data, "classes"):
        classes = list(data.classes)
        batches = data.batches(split, batch_size, train=False, rank=rank, world_size=world_size)
    else:
        classes = list(classes or model.record.classes)
        batches = data
    sums = confusion_sums(model, batches, len(classes), device=dev, speed=speed, flip=flip)
    if reduce is not None:
        sums = reduce(sums)
    return result_from_sums(sums, classes)


def _device_of(model) -> torch.device:
    """Where a torch module's weights are; a `loading.Predictor` (ONNX Runtime, ...) says itself."""
    if isinstance(model, nn.Module):
        return next(model.parameters()).device
    return getattr(model, "device", torch.device("cpu"))


def predict(model, image_paths: Sequence[str | os.PathLike], topk: int = 5) -> list[dict]:
    """Class names and probabilities for each image file, using `model.record`'s classes and
    preprocessing. `model` is a torch module from `squeezelab.load_model` or any
    `squeezelab.load_predictor` (ONNX, int8, ...): both are called on a float batch. Any image
    size and mode; bad files raise `BadImageError` naming the file.

    Returns [{"path": str, "predictions": [{"label": name, "class": name, "probability": p}, ...]}, ...],
    most probable first.
    """
    images = [open_image(p) for p in image_paths]
    classes = list(model.record.classes)
    k = max(1, min(topk, len(classes)))
    device = _device_of(model)
    model.eval()
    results = []
    with torch.no_grad():
        for path, image in zip(image_paths, images):
            x = model.record.preprocessing.images_to_batch([image]).to(device)
            probs = torch.softmax(model(x).float(), dim=1)[0].cpu()
            top = probs.topk(k)
            results.append({"path": str(path), "predictions": [  # "label" as the service; "class" kept
                {"label": classes[i], "class": classes[i], "probability": round(float(p), 6)}
                for p, i in zip(top.values, top.indices)]})
    return results
