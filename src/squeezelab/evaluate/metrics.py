"""Accuracy, loss, per-class precision/recall and the confusion matrix, from logits and labels.

Pure functions: no model, no data set, no device. Evaluation and training add up `batch_sums`
over their batches (and over data-parallel ranks) and turn the total into an `EvalResult` once.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
from torch import nn

from squeezelab.errors import SqueezelabError


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


def batch_sums(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """One float64 vector: [loss sum, top-5 correct, count, confusion matrix (flattened)].

    A single vector so batches and data-parallel ranks add theirs with one `+` or all_reduce.
    """
    logits, labels = logits.float().cpu(), labels.cpu()
    sums = torch.zeros(3 + num_classes * num_classes, dtype=torch.float64)
    sums[0] = nn.functional.cross_entropy(logits, labels, reduction="sum").item()
    k = min(5, num_classes)
    sums[1] = (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum().item()
    sums[2] = len(labels)
    cells = labels * num_classes + logits.argmax(dim=1)
    sums[3:] = torch.bincount(cells, minlength=num_classes * num_classes).double()
    return sums


def result_from_sums(sums: torch.Tensor, classes: Sequence[str]) -> EvalResult:
    n = len(classes)
    count = int(sums[2].item())
    if count == 0:
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
