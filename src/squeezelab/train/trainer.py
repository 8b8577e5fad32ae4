"""`Trainer`: a model, its optimizer and learning-rate schedule, and one readable `fit` loop.

Every path that trains goes through it: `squeezelab train` (train.run), compression's
fine-tuning (`fine_tune`), and the benchmarks, which time `Trainer.step`, the step users get.
Epochs are seeded from (seed, epoch), so a run resumed after epoch k repeats epochs k+1... exactly.

Under torchrun every rank runs the same Trainer; a stop on one rank (the loss guard, or an error
while reading or running a batch) is shared with the others before the backward pass, so all
ranks end together with the same one-line error instead of waiting on each other's gradients.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import torch
from torch import nn

from squeezelab import runtime
from squeezelab.data import Dataset
from squeezelab.errors import SqueezelabError
from squeezelab.evaluate import EvalResult, confusion_sums, result_from_sums
from squeezelab.train import distributed
from squeezelab.train.config import TrainConfig
from squeezelab.train.guard import LossGuard, TrainingStopped
from squeezelab.train.schedule import lr_factor

METRIC_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SqueezelabError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return device


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device,
                   speed: runtime.SpeedConfig) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only: decaying biases and batch-norm scales only hurts.
    With `pretrained_lr_factor` < 1 every layer but the classifier (the new head) learns at
    lr x the factor: fine-tuning adapts pretrained features without overwriting them. The fused
    optimizer step where torch has one (`runtime.optimizer_options`)."""
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not params:
        raise SqueezelabError("the model has no trainable parameters (all frozen?)")
    factor = config.pretrained_lr_factor
    slow = {name for name, _ in params if factor != 1.0 and not name.startswith("classifier.")}
    groups = []
    for lr, members in ((config.lr, [(n, p) for n, p in params if n not in slow]),
                        (config.lr * factor, [(n, p) for n, p in params if n in slow])):
        groups += [{"params": [p for _, p in members if p.ndim > 1], "weight_decay": config.weight_decay, "lr": lr},
                   {"params": [p for _, p in members if p.ndim <= 1], "weight_decay": 0.0, "lr": lr}]
    groups = groups[:2] + [g for g in groups[2:] if g["params"]]  # a run from scratch keeps its two groups
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, **runtime.optimizer_options(torch.optim.AdamW, device, speed))
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True,
                           **runtime.optimizer_options(torch.optim.SGD, device, speed))


class Trainer:
    """Owns a model on its device, its optimizer and its schedule, sized by the data's own batch
    count (`Dataset.num_batches`), so the last scheduled step is the last step taken.

    >>> trainer = Trainer(model, data, config)   # doctest: +SKIP
    >>> history = trainer.fit(config.epochs)      # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, data: Dataset, config: TrainConfig, *, device: torch.device | None = None,
                 speed: runtime.SpeedConfig = runtime.SpeedConfig(),
                 info: distributed.DistInfo = distributed.DistInfo()):
        self.device = device or resolve_device(config.device)
        self.model = runtime.prepare_model(model, self.device, speed)
        self.net = nn.parallel.DistributedDataParallel(self.model) if info.enabled else self.model
        self.data, self.config, self.speed, self.info = data, config, speed, info
        self.precision = runtime.training_precision(self.device, speed)
        self.optimizer = make_optimizer(self.model, config, self.device, speed)
        self.batches_per_epoch = data.num_batches("train", config.batch_size, info.world_size)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / config.accumulate)
        total = self.steps_per_epoch * config.epochs
        warmup = int(round(config.warmup_epochs * self.steps_per_epoch))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, total, warmup, config.schedule))
        self.guard = LossGuard(data.num_classes, config.stuck_steps, config.lr)

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and loss of one batch (under the run's precision); returns (loss, logits)."""
        images = runtime.prepare_batch(images, self.device, self.speed)
        labels = labels.to(self.device, non_blocking=True)
        with runtime.autocast(self.device, self.precision):
            logits = self.net(images)
        loss = nn.functional.cross_entropy(logits.float(), labels, label_smoothing=self.config.label_smoothing)
        return loss, logits

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """One whole optimizer step on one batch (what the benchmarks time); returns the loss."""
        loss, _ = self.step(images, labels)
        loss.backward()
        self._optimizer_step()
        return loss.item()

    def train_epoch(self, epoch: int, progress=None) -> torch.Tensor:
        """Train on every batch of the epoch once; returns float64 [loss sum, correct, count]
        summed over ranks. Gradients of `accumulate` consecutive batches are summed before each
        optimizer step; the scheduler moves once per optimizer step."""
        c = self.config
        torch.manual_seed(c.seed * 1000 + epoch)  # dropout: the same after a resume
        self.net.train()
        batches = iter(self.data.batches("train", c.batch_size, epoch=epoch, seed=c.seed, rank=self.info.rank,
                                         world_size=self.info.world_size, workers=c.workers))
        sums = torch.zeros(3, dtype=torch.float64)
        self.optimizer.zero_grad(set_to_none=True)
        pending, step = 0, 0
        while (batch := self._checked_forward(batches, epoch, step)) is not None:
            loss, logits, labels = batch
            step += 1
            (loss / c.accumulate).backward()
            pending += 1
            if pending == c.accumulate:
                self._optimizer_step()
                pending = 0
            sums += torch.tensor([loss.item() * len(labels), (logits.argmax(1) == labels).sum().item(), len(labels)],
                                 dtype=torch.float64)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{sums[0].item() / sums[2].item():.4f}")
        if pending:
            self._optimizer_step()
        if progress is not None:
            progress.close()
        return distributed.all_reduce_sum(sums, self.info)

    def _checked_forward(self, batches, epoch: int, step: int):
        """The next batch's (loss, logits, labels), or None when the epoch has no more batches.
        A loss the guard refuses, or an error reading or running the batch, stops every rank: the
        ranks agree before the backward pass, whose gradient exchange would otherwise wait forever."""
        problem, result = None, None
        try:
            images, labels = next(batches)
            loss, logits = self.step(images, labels)
            result = (loss, logits, labels.to(self.device))
            problem = self.guard.problem(loss.item(), epoch, step)
        except StopIteration:
            pass
        except Exception as exc:  # noqa: BLE001 - shared with the other ranks, then raised as it was
            if not self.info.enabled:
                raise
            problem = exc
        if self.info.enabled and distributed.broadcast_flag(problem is not None, self.info) and problem is None:
            problem = TrainingStopped("another training process stopped the run (its message names the cause)")
        if problem is not None:
            raise problem
        return result

    def _optimizer_step(self) -> None:
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    def validate(self) -> EvalResult:
        """The model on the validation split, in fp32, summed over ranks."""
        batches = self.data.batches("val", 256, train=False, rank=self.info.rank, world_size=self.info.world_size)
        sums = confusion_sums(self.model, batches, self.data.num_classes, device=self.device, speed=self.speed)
        return result_from_sums(distributed.all_reduce_sum(sums, self.info), self.data.classes)

    def epoch(self, epoch: int, progress=None, *, validate: bool = True) -> tuple[dict, EvalResult | None]:
        """Train one epoch, then validate; the metrics row (METRIC_FIELDS; val_* None without
        validation) and the validation result."""
        start = time.perf_counter()
        sums = self.train_epoch(epoch, progress)
        val = self.validate() if validate else None
        count = sums[2].item()
        row = {"epoch": epoch, "train_loss": sums[0].item() / count, "train_acc": sums[1].item() / count,
               "val_loss": val.loss if val else None, "val_acc": val.top1 if val else None,
               "lr": self.optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - start}
        return row, val

    def fit(self, epochs: int | None = None, *, first: int = 1, validate: bool = True,
            on_epoch: Callable[[dict, EvalResult | None], None] | None = None,
            progress: Callable[[int], object] | None = None) -> list[dict]:
        """Epochs `first` to `epochs` (default: the config's); `on_epoch(row, val)` after each
        (the run folder's checkpoints), `progress(epoch)` makes a progress bar. Returns the rows."""
        history = []
        for epoch in range(first, (epochs or self.config.epochs) + 1):
            row, val = self.epoch(epoch, progress(epoch) if progress else None, validate=validate)
            history.append(row)
            if on_epoch is not None:
                on_epoch(row, val)
        return history

    def state_dict(self) -> dict:
        """What resuming needs besides the weights: the optimizer's and the schedule's state."""
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


@dataclasses.dataclass(frozen=True)
class FineTuneConfig:
    """A fixed short schedule for a model already trained (compression's recovery epochs)."""

    epochs: int
    lr: float = 0.01
    batch_size: int = 64
    optimizer: str = "sgd"
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    seed: int = 0

    def train_config(self) -> TrainConfig:
        """Every value set, so no recipe applies: a short warm-up, then cosine decay from `lr`."""
        return TrainConfig.given(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, optimizer=self.optimizer,
                                 weight_decay=self.weight_decay, label_smoothing=self.label_smoothing,
                                 warmup_epochs=min(1.0, self.epochs / 4), seed=self.seed, schedule="cosine")


def fine_tune(model: nn.Module, data: Dataset, epochs: int, *, lr: float = 0.01, batch_size: int = 64,
              optimizer: str = "sgd", weight_decay: float = 0.0, label_smoothing: float = 0.0,
              device: str | None = None, speed: runtime.SpeedConfig | None = None, seed: int = 0,
              log: Callable[[str], None] | None = None) -> list[dict]:
    """Train `model` in place for `epochs` on `data` and return per-epoch metrics.

    Trains whatever parameters the module exposes with requires_grad (including the `weight_orig`
    of torch.nn.utils.prune and the `original` of parametrize, so masks stay applied); never
    rebuilds the model. A short warm-up then cosine decay from `lr`. The model is left in eval
    mode on its original device and memory format is kept.

    >>> history = fine_tune(model, open_dataset("digits"), epochs=2, lr=0.01)  # doctest: +SKIP
    >>> history[-1]["val_acc"]                                                 # doctest: +SKIP
    """
    config = FineTuneConfig(epochs, lr, batch_size, optimizer, weight_decay, label_smoothing, seed).train_config()
    dev = torch.device(device) if device else next(model.parameters()).device
    trainer = Trainer(model, data, config, device=dev, speed=speed or runtime.SpeedConfig())

    def say(row: dict, _val) -> None:
        if log:
            log(f"fine-tune epoch {row['epoch']}/{epochs}  train loss {row['train_loss']:.4f}  "
                f"val acc {row['val_acc']:.4f}")

    history = trainer.fit(on_epoch=say)
    trainer.model.eval()
    return history


def frozen_layers(model: nn.Module, config: TrainConfig) -> list[nn.Module]:
    """The feature layers that keep their pretrained weights: all of them with `freeze_features`,
    or those before the `frozen_stages`-th max pool. Their backward pass is skipped altogether
    (nothing before them needs a gradient): at 227 px the first two stages of SqueezeNet 1.0 hold
    half its multiply-adds."""
    layers = list(getattr(model, "features", []))
    if config.freeze_features:
        return layers
    pools = [i for i, layer in enumerate(layers) if isinstance(layer, nn.MaxPool2d)]
    if not config.frozen_stages or not pools:
        return []
    return layers[:pools[min(config.frozen_stages, len(pools)) - 1]]


WHITENING_IMAGES = 1024  # training images whose patches set the first conv (train.whiten)


def start_model(plan, data: Dataset, pretrained=None, log: Callable[[str], None] = lambda _msg: None) -> nn.Module:
    """The model a run starts from (`plan`: a `train.recipe.Plan`): built with the plan's seed,
    filled from the pretrained weights, its features frozen if asked, or its first conv whitened
    from the training images where the recipe says so."""
    from squeezelab.train.transfer import load_pretrained
    from squeezelab.train.whiten import whiten_first_conv_

    torch.manual_seed(plan.train.seed)
    model = plan.model.build()
    if pretrained is not None:
        load_pretrained(model, pretrained, log)
    for layer in frozen_layers(model, plan.train):
        layer.requires_grad_(False)
    if plan.init_from_data:
        images, _ = next(data.batches("train", WHITENING_IMAGES, train=False, shuffle=True, seed=plan.train.seed))
        whiten_first_conv_(model, images, seed=plan.train.seed)
    return model
