"""Accuracy, loss, per-class precision/recall and the confusion matrix; and `predict` on files.

    >>> import squeezelab
    >>> model = squeezelab.load_model("runs/digits/best.pt")          # doctest: +SKIP
    >>> evaluate(model, open_dataset(DataConfig.from_dict(...))).top1   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from squeezelab.train import performance


@dataclasses.dataclass
class EvalResult:
    """top1/top5 are fractions; top5 is None with 5 classes or fewer (it would be 1.0)."""

    top1: float
    top5: float | None
    loss: float
    count: int
    classes: list[str]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    per_class: list[dict]  # {class, accuracy, precision, recall, support}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def confusion_sums(model: nn.Module, batches: Iterable, num_classes: int, *, device: torch.device,
                   speed: performance.SpeedConfig) -> torch.Tensor:
    """One float64 vector: [loss sum, top-5 correct, count, confusion matrix (flattened)].

    A single vector so data-parallel ranks can add theirs with one all_reduce.
    """
    sums = torch.zeros(3 + num_classes * num_classes, dtype=torch.float64)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for images, labels in batches:
            images = performance.prepare_batch(images, device, speed)
            with performance.autocast(device, speed):
                logits = model(images)
            logits, labels = logits.float().cpu(), labels.cpu()
            sums[0] += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            k = min(5, num_classes)
            sums[1] += (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum().item()
            sums[2] += len(labels)
            cells = labels * num_classes + logits.argmax(dim=1)
            sums[3:] += torch.bincount(cells, minlength=num_classes * num_classes).double()
    model.train(was_training)
    return sums


def result_from_sums(sums: torch.Tensor, classes: Sequence[str]) -> EvalResult:
    n = len(classes)
    count = int(sums[2].item())
    if count == 0:
        from squeezelab.errors import SqueezelabError

        raise SqueezelabError("there are no images to evaluate; check the data spec and its validation split")
    confusion = sums[3:].view(n, n).long()
    correct = confusion.diag()
    support, predicted = confusion.sum(dim=1), confusion.sum(dim=0)
    per_class = []
    for i, name in enumerate(classes):
        recall = correct[i].item() / support[i].item() if support[i] else 0.0
        precision = correct[i].item() / predicted[i].item() if predicted[i] else 0.0
        per_class.append({"class": name, "accuracy": recall, "precision": precision, "recall": recall,
                          "support": int(support[i])})
    return EvalResult(
        top1=correct.sum().item() / count,
        top5=sums[1].item() / count if n > 5 else None,
        loss=sums[0].item() / count,
        count=count,
        classes=list(classes),
        confusion=confusion.tolist(),
        per_class=per_class,
    )


def evaluate(model: nn.Module, data, *, split: str = "val", batch_size: int = 256, device: str | None = None,
             speed: performance.SpeedConfig | None = None, classes: Sequence[str] | None = None,
             rank: int = 0, world_size: int = 1, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None
             ) -> EvalResult:
    """Top-1, top-5, loss, per-class accuracy/precision/recall and confusion matrix of `model`.

    data: a `squeezelab.data.Dataset` (its `split` is used, not augmented) or any iterable of
    (normalised images, labels) batches (then `classes`, or `model.classes`, names the classes).
    Under data-parallel evaluation pass rank/world_size and `reduce` (an all-reduce of a tensor).

    >>> from squeezelab.data import open_dataset
    >>> from squeezelab import create_model
    >>> data = open_dataset("synthetic:n=16,classes=2")
    >>> model = create_model("squeezenet1_1", num_classes=2, stem="small")
    >>> 0.0 <= evaluate(model, data).top1 <= 1.0
    True
    """
    speed = speed or performance.SpeedConfig()
    dev = torch.device(device) if device else next(model.parameters()).device
    if hasattr(data, "batches") and hasattr(data, "classes"):
        classes = list(data.classes)
        batches = data.batches(split, batch_size, train=False, rank=rank, world_size=world_size)
    else:
        classes = list(classes or getattr(model, "classes"))
        batches = data
    sums = confusion_sums(model, batches, len(classes), device=dev, speed=speed)
    if reduce is not None:
        sums = reduce(sums)
    return result_from_sums(sums, classes)


def predict(model: nn.Module, image_paths: Sequence[str | os.PathLike], topk: int = 5) -> list[dict]:
    """Class names and probabilities for each image file, using `model.classes` and
    `model.preprocessing` (set by `squeezelab.load_model`). Any size and mode; bad files raise
    `BadImageError` naming the file.

    Returns [{"path": str, "predictions": [{"class": name, "probability": p}, ...]}, ...],
    most probable first.
    """
    from squeezelab.data.images import open_image

    images = [open_image(p) for p in image_paths]
    classes = list(model.classes)
    k = max(1, min(topk, len(classes)))
    device = next(model.parameters()).device
    model.eval()
    results = []
    with torch.no_grad():
        for path, image in zip(image_paths, images):
            x = model.preprocessing.images_to_batch([image]).to(device)
            probs = torch.softmax(model(x).float(), dim=1)[0].cpu()
            top = probs.topk(k)
            results.append({"path": str(path), "predictions": [
                {"class": classes[i], "probability": round(float(p), 6)} for p, i in zip(top.values, top.indices)]})
    return results


def evaluate_file(path: str | os.PathLike, data_spec: str | None = None, *, batch_size: int = 256,
                  skip_bad_images: bool = False) -> dict:
    """`squeezelab eval`: load a model file and evaluate it; without `data_spec`, on the validation
    split recorded in the checkpoint. Returns EvalResult.to_dict() plus `data` and `path`."""
    import squeezelab
    from squeezelab.data import DataConfig, open_dataset
    from squeezelab.errors import SqueezelabError
    from squeezelab.train.checkpoint import load_checkpoint

    model = squeezelab.load_model(path)
    recorded = None
    if str(path).endswith((".pt", ".pth")):
        recorded = load_checkpoint(path).get("data")
    elif isinstance(getattr(model, "compression", None), dict):  # a .sqz records its checkpoint's data
        recorded = model.compression.get("data") if isinstance(model.compression.get("data"), dict) else None
    if data_spec is None:
        if not recorded:
            raise SqueezelabError(f"{path} records no data set; pass --data")
        config = DataConfig.from_dict({**recorded, "skip_bad_images": skip_bad_images or recorded.get("skip_bad_images", False)})
    else:
        image_size = model.preprocessing.crop
        config = DataConfig(data_spec, image_size=image_size, skip_bad_images=skip_bad_images,
                            **({"seed": recorded["seed"], "val_fraction": recorded["val_fraction"]}
                               if recorded and recorded.get("spec") == data_spec else {}))
        if recorded and recorded.get("spec") == data_spec:
            config = config.replace(split=recorded.get("split"))
    data = open_dataset(config)
    data.preprocessing = model.preprocessing  # the model's recorded normalisation, not the data's
    if list(data.classes) == list(model.classes):
        result = evaluate(model, data, batch_size=batch_size).to_dict()
    else:  # e.g. ImageNet folders named by WordNet id, maybe some classes only: match by id or name
        from squeezelab.data.class_match import class_ids_of, match_classes, restrict_result

        keep = match_classes(data.classes, model.classes, class_ids_of(model))
        labels = torch.tensor(keep)
        batches = ((x, labels[y]) for x, y in data.batches("val", batch_size, train=False))
        result = restrict_result(evaluate(model, batches, classes=model.classes).to_dict(), keep, data.classes)
    return {**result, "data": config.spec, "path": str(path)}
