"""One epoch of training, top to bottom, and the guard that stops a run going nowhere.

SqueezeNet from scratch can sit at chance: the ReLU after the final 1x1 conv dies and every logit
is 0, so the loss stays at exactly ln(num_classes) (2.3026 for 10 classes). `LossGuard` notices
that (and NaN/inf losses) and stops the run with advice instead of training on silently.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable

import torch
from torch import nn

from squeezelab.errors import SqueezelabError
from squeezelab import runtime


class TrainingStopped(SqueezelabError):
    """Training was stopped because it cannot go on usefully (NaN loss, stuck at chance)."""


@dataclasses.dataclass
class LossGuard:
    """Stops on a non-finite loss, or on `stuck_steps` steps in a row at ln(num_classes)."""

    num_classes: int
    stuck_steps: int = 300
    lr: float = 0.0
    tolerance: float = 0.01
    steps_at_chance: int = 0

    def check(self, loss: float, epoch: int, step: int) -> None:
        if not math.isfinite(loss):
            raise TrainingStopped(
                f"loss became {loss} at epoch {epoch} step {step}; stopped (the last good checkpoint is kept): "
                f"lower --lr (now {self.lr:g}) or use --model with batch_norm, or check the data for broken values"
            )
        chance = math.log(self.num_classes)
        self.steps_at_chance = self.steps_at_chance + 1 if abs(loss - chance) < self.tolerance else 0
        if self.stuck_steps and self.steps_at_chance >= self.stuck_steps:
            raise TrainingStopped(
                f"loss has stayed at ln({self.num_classes}) = {chance:.4f} (chance) for {self.steps_at_chance} steps: "
                "the network outputs the same for every image. Usual causes: the ReLU after the final conv died "
                "(build with final_relu=False), no batch norm (batch_norm=True), or --lr too high for the batch "
                f"(now {self.lr:g}; try 10x lower or --accumulate). Pass --stuck-steps 0 to train on anyway"
            )


def train_one_epoch(model: nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer, scheduler, *,
                    device: torch.device, speed: runtime.SpeedConfig, label_smoothing: float = 0.0,
                    accumulate: int = 1, guard: LossGuard | None = None, epoch: int = 0,
                    progress=None) -> torch.Tensor:
    """Train on every batch once; returns float64 [loss sum, correct, count] (summable over ranks).

    Gradients of `accumulate` consecutive batches are summed before each optimizer step, and the
    scheduler moves once per optimizer step.
    """
    model.train()
    sums = torch.zeros(3, dtype=torch.float64)
    optimizer.zero_grad(set_to_none=True)
    pending = 0
    for step, (images, labels) in enumerate(batches):
        images = runtime.prepare_batch(images, device, speed)
        labels = labels.to(device, non_blocking=True)
        with runtime.autocast(device, speed):
            logits = model(images)
        loss = nn.functional.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
        value = loss.item()
        if guard is not None:
            guard.check(value, epoch, step)
        (loss / accumulate).backward()
        pending += 1
        if pending == accumulate:
            _step(optimizer, scheduler)
            pending = 0
        sums += torch.tensor([value * len(labels), (logits.argmax(1) == labels).sum().item(), len(labels)],
                             dtype=torch.float64)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{sums[0].item() / sums[2].item():.4f}")
    if pending:
        _step(optimizer, scheduler)
    return sums


def _step(optimizer, scheduler) -> None:
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if scheduler is not None:
        scheduler.step()
