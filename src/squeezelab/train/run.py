"""`train(...)`: a whole run from configs to an output folder; `fine_tune(...)`: more epochs for a
model already in memory (used by compression to recover accuracy after pruning).

A run writes into `out`: last.pt (every epoch) and best.pt (best validation accuracy), both
atomically; metrics.csv; config.json; result.json; curves.png and confusion.png with per-class
precision/recall (per_class.csv). Every epoch is seeded from (seed, epoch), so a run resumed from
last.pt (even after SIGKILL) ends with the same metrics as one that was never interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from squeezelab import runtime
from squeezelab.data import DataConfig, Dataset, open_dataset
from squeezelab.errors import SqueezelabError, SqueezelabWarning
from squeezelab.evaluate import EvalResult, confusion_sums, result_from_sums
from squeezelab.models.config import ModelConfig
from squeezelab.models.registry import option_default
from squeezelab.models.record import Provenance
from squeezelab.preprocessing import Preprocessing
from squeezelab.report.training import write_metrics_csv, write_run_reports
from squeezelab.train import distributed
from squeezelab.train.checkpoint import load_checkpoint, save_checkpoint
from squeezelab.train.config import DEFAULT_MODEL, SMALL_IMAGE_MODEL, SMALL_IMAGE_SIZE, TrainConfig
from squeezelab.train.loop import LossGuard, train_one_epoch
from squeezelab.train.schedule import lr_factor
from squeezelab.train.transfer import (Pretrained, input_preprocessing, load_pretrained, open_pretrained,
                                      pretrained_model_config, recipe_lr)
from squeezelab.train.whiten import whiten_first_conv_
from squeezelab.utils.atomic import atomic_write_text, remove_stale_temporaries


def default_model_config(data: Dataset, name: str | None = None, **options) -> ModelConfig:
    """The model that converges from scratch on `data` (see docs/training.md): for images of 64 px
    or less `squeezenet_cifar` (its own defaults: batch norm, no final ReLU); otherwise, and for
    any other SqueezeNet named, batch norm, no ReLU after the final conv, and the small stem (3x3
    stride 1, no first pool) for small images, where the standard stem would shrink a 32x32
    image to 7x7 at once. A batch-norm SqueezeNet with bypass also normalises its classifier's
    input (`head_norm`: without it the logits run away within 20 steps, see `SqueezeNet`)."""
    small = data.image_size <= SMALL_IMAGE_SIZE
    name = name or (SMALL_IMAGE_MODEL if small else DEFAULT_MODEL)
    defaults = {"num_classes": data.num_classes}
    if name.startswith("squeezenet") and name != SMALL_IMAGE_MODEL:
        defaults.update(batch_norm=True, final_relu=False, stem="small" if small else "standard")
    chosen = {**defaults, **{k: v for k, v in options.items() if v is not None}}
    bypass = chosen.get("bypass", "none") != "none" or name.endswith("_bypass")
    batch_norm = chosen.get("batch_norm", option_default(name, "batch_norm"))  # squeezenet_cifar's is True
    if name.startswith("squeezenet") and batch_norm and bypass:
        chosen.setdefault("head_norm", True)
    return ModelConfig(name, chosen)


def choose_model_config(data: Dataset, name: str | None = None, pretrained: Pretrained | None = None,
                        **options) -> ModelConfig:
    """The model for a run: with pretrained weights their own architecture (`name` and options
    override it), otherwise `default_model_config`."""
    if pretrained is not None:
        return pretrained_model_config(pretrained, data.num_classes, name, **options)
    return default_model_config(data, name, **options)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SqueezelabError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return device


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only: decaying biases and batch-norm scales only hurts.
    With `pretrained_lr_factor` < 1 every layer but the classifier (the new head) learns at
    lr x the factor: fine-tuning adapts pretrained features without overwriting them."""
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
    groups = groups[:2] + [g for g in groups[2:] if g["params"]]  # the scratch recipe keeps its two groups
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)


def make_scheduler(optimizer, config: TrainConfig, steps_per_epoch: int, epochs: int | None = None):
    total = steps_per_epoch * (epochs or config.epochs)
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, warmup, config.schedule))


def check_writable(out: Path) -> None:
    """Fail before training, not after an hour, when --out cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / ".write-test", "ok")
        (out / ".write-test").unlink()
    except OSError as exc:
        raise SqueezelabError(f"cannot write to --out {out}: {exc.strerror or exc}; pick a writable folder") from None


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state()}


@dataclasses.dataclass
class Epochs:
    """What every epoch uses, built once: by `setup` for a run, by `fine_tune` for a model in memory."""

    model: nn.Module
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    data: Dataset
    config: TrainConfig
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    guard: LossGuard
    device: torch.device
    speed: runtime.SpeedConfig
    info: distributed.DistInfo = distributed.DistInfo()

    @property
    def batches_per_epoch(self) -> int:
        return _batches_per_epoch(len(self.data.train), self.config.batch_size, self.info.world_size)


def make_epochs(model: nn.Module, data: Dataset, config: TrainConfig, device: torch.device,
                speed: runtime.SpeedConfig, info: distributed.DistInfo = distributed.DistInfo()) -> Epochs:
    """The optimizer, LR schedule and loss guard for `config`, around a model already on `device`."""
    net = nn.parallel.DistributedDataParallel(model) if info.enabled else model
    optimizer = make_optimizer(model, config)
    steps_per_epoch = math.ceil(_batches_per_epoch(len(data.train), config.batch_size, info.world_size) / config.accumulate)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch)
    guard = LossGuard(data.num_classes, config.stuck_steps, config.lr)
    return Epochs(model, net, data, config, optimizer, scheduler, guard, device, speed, info)


def train_epoch(e: Epochs, epoch: int, progress=None) -> torch.Tensor:
    """Train one epoch, without validating; returns [loss sum, correct, count] summed over ranks.
    Seeded from (seed, epoch), so a resumed run repeats it exactly."""
    c, info = e.config, e.info
    torch.manual_seed(c.seed * 1000 + epoch)  # dropout: the same after a resume
    batches = e.data.batches("train", c.batch_size, epoch=epoch, seed=c.seed, rank=info.rank,
                             world_size=info.world_size, workers=c.workers)
    sums = train_one_epoch(e.net, batches, e.optimizer, e.scheduler, device=e.device, speed=e.speed,
                           label_smoothing=c.label_smoothing, accumulate=c.accumulate, guard=e.guard, epoch=epoch,
                           progress=progress)
    if progress is not None:
        progress.close()
    return distributed.all_reduce_sum(sums, info)


def run_epoch(e: Epochs, epoch: int, progress=None) -> tuple[dict, EvalResult]:
    """Train one epoch (`train_epoch`), then validate; returns the metrics row (METRIC_FIELDS) and
    the validation result, both summed over ranks."""
    start = time.perf_counter()
    info = e.info
    sums = train_epoch(e, epoch, progress)
    val_batches = e.data.batches("val", 256, train=False, rank=info.rank, world_size=info.world_size)
    val_sums = confusion_sums(e.model, val_batches, e.data.num_classes, device=e.device, speed=e.speed)
    val = result_from_sums(distributed.all_reduce_sum(val_sums, info), e.data.classes)
    row = {"epoch": epoch, "train_loss": sums[0].item() / sums[2].item(), "train_acc": sums[1].item() / sums[2].item(),
           "val_loss": val.loss, "val_acc": val.top1, "lr": e.optimizer.param_groups[0]["lr"],
           "seconds": time.perf_counter() - start}
    return row, val


WHITENING_IMAGES = 1024  # training images whose patches set the first conv (train.whiten)


def init_from_data(model: nn.Module, data: Dataset, config: TrainConfig) -> None:
    """What a fresh model takes from its training images before the first step: with
    `whiten_stem`, the first convolution's filters (train.whiten)."""
    if config.whiten_stem:
        images, _ = next(data.batches("train", WHITENING_IMAGES, train=False, shuffle=True, seed=config.seed))
        whiten_first_conv_(model, images, seed=config.seed)


def use_recipe_augmentation(data: Dataset, config: TrainConfig) -> None:
    """The recipe's random shift (`translate`) and cutout in place of the data set's own, where it
    augments."""
    changes = {field: value for field, value in (("pad", config.translate), ("cutout", config.cutout))
               if value is not None}
    if data.augment is not None and changes:
        data.augment = dataclasses.replace(data.augment, **changes)


@dataclasses.dataclass
class Run:
    """A training run in progress: its epochs, where it writes, and what it has done so far."""

    epochs: Epochs
    model_config: ModelConfig
    out: Path
    payload: dict  # config.json, and the head of every checkpoint
    history: list[dict] = dataclasses.field(default_factory=list)
    best: dict = dataclasses.field(default_factory=lambda: {"val_acc": -1.0, "epoch": 0})
    first_epoch: int = 1
    last_val: EvalResult | None = None


def train(model_config: ModelConfig | Callable[[Dataset], ModelConfig] | None = None, data_config: DataConfig = DataConfig(),
          train_config: TrainConfig = TrainConfig(), speed: runtime.SpeedConfig = runtime.SpeedConfig(),
          out: str = "runs/latest", *, resume: bool = False, resume_epochs: int | None = None,
          progress: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Train from configs, writing checkpoints and reports to `out`; returns the result dict that
    `squeezelab train --json` prints: best_val_acc (fraction), best_epoch, final_val_acc, epochs,
    seconds, checkpoint (best.pt), last_checkpoint, out, device, world_size, train_images,
    val_images, skipped_images, model, data, provenance (squeezelab version and git revision).

    model_config None: `default_model_config(data)`; a callable: called with the opened Dataset.
    resume: continue from out/last.pt with the configs recorded there (`resume_epochs`: a new total,
    see `TrainConfig.resumed`). Under torchrun, each rank calls this and only rank 0 writes.

    >>> result = train(data_config=DataConfig("synthetic:n=64,classes=2"),
    ...                train_config=TrainConfig(epochs=1), out="/tmp/sqz-doctest")  # doctest: +SKIP
    """
    start = time.perf_counter()
    out = Path(out)
    device, info = _join(train_config.device)
    say = log if (log and info.is_main) else (lambda _msg: None)
    try:
        if info.is_main:
            check_writable(out)
            remove_stale_temporaries(out)  # a run killed mid-write (SIGKILL) leaves its temporary
        runtime.configure_process(speed)
        state = None
        if resume:
            state, (model_config, data_config, train_config) = resume_state(out, train_config, resume_epochs)
        run = setup(model_config, data_config, train_config, speed, device, info, out, state=state, log=say)
        if info.is_main and not resume and (out / "last.pt").is_file():  # said once the new run can start
            warnings.warn(f"{out} holds a run already; it is replaced (--resume continues it instead, or pick "
                          "another --out)", SqueezelabWarning, stacklevel=2)
        say(_start_line(run))
        run_epochs(run, say, progress)
        return finish(run, time.perf_counter() - start)
    finally:
        distributed.cleanup(info)


def _join(device_name: str) -> tuple[torch.device, distributed.DistInfo]:
    """The device, and this process's place among torchrun's ranks (each rank on its own GPU)."""
    device = resolve_device(device_name)
    info = distributed.setup(device.type)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    return device, info


def resume_state(out: Path, train_config: TrainConfig, epochs: int | None = None,
                 ) -> tuple[dict, tuple[ModelConfig, DataConfig, TrainConfig]]:
    """out/last.pt and the configs it records (this call's device and workers win: the machine may
    differ; `epochs`, when given, is the run's new total)."""
    last = out / "last.pt"
    if not last.is_file():
        raise SqueezelabError(f"--resume: {last} does not exist; start the run without --resume")
    state = load_checkpoint(last)
    recorded = TrainConfig.from_dict(state["train"]).resumed(
        int(state["epoch"]), epochs, device=train_config.device, workers=train_config.workers)
    return state, (ModelConfig.from_dict(state["model"]), DataConfig.from_dict(state["data"]), recorded)


def setup(model_config, data_config: DataConfig, train_config: TrainConfig, speed: runtime.SpeedConfig,
          device: torch.device, info: distributed.DistInfo, out: Path, *, state: dict | None = None,
          log: Callable[[str], None] = lambda _msg: None) -> Run:
    """Open the data, build the model (pretrained weights, frozen features, or the resumed
    state), its optimizer and schedule; write config.json. Pretrained weights decide the input
    (size, channel order, normalisation) unless the data config sets the size."""
    pretrained = open_pretrained(train_config.weights) if train_config.weights and state is None else None
    if pretrained is not None and data_config.image_size is None:
        data_config = data_config.replace(image_size=pretrained.preprocessing.crop)
    data = open_dataset(data_config)
    if pretrained is not None:
        data.preprocessing = input_preprocessing(pretrained, data.preprocessing)
    elif state is not None and train_config.weights:  # the input convention the run started with
        data.preprocessing = Preprocessing.from_dict(state["preprocessing"])
    train_images = math.ceil(len(data.train) / info.world_size)
    train_config = train_config.resolved(data.image_size, train_images)
    if pretrained is not None and train_config.lr is None:
        train_config = train_config.replace(lr=recipe_lr(pretrained))
    if train_config.lr is None:
        raise SqueezelabError("no learning rate: pass --lr (the fine-tuning recipe chooses one only with --weights)")
    train_config = train_config.fitted(train_images)
    use_recipe_augmentation(data, train_config)
    model_config = _model_config_for(model_config, data, pretrained)
    torch.manual_seed(train_config.seed)
    model = model_config.build()
    if pretrained is not None:
        load_pretrained(model, pretrained, log)
    if train_config.freeze_features:
        for p in model.features.parameters():
            p.requires_grad_(False)
    if state is not None:
        model.load_state_dict(state["state_dict"])
    elif pretrained is None:
        init_from_data(model, data, train_config)
    model = runtime.prepare_model(model, device, speed)
    payload = {"model": model_config.to_dict(), "classes": list(data.classes),
               "preprocessing": data.preprocessing.to_dict(), "data": data.config.to_dict(),
               "train": train_config.to_dict(), "speed": speed.to_dict()}
    weights_name = (pretrained.record or pretrained.spec) if pretrained else (state or {}).get("provenance", {}).get("weights")
    if weights_name:
        payload["provenance"] = {"weights": weights_name}
    run = Run(make_epochs(model, data, train_config, device, speed, info), model_config, out, payload)
    if state is not None:
        _restore(run, state)
    if info.is_main:
        atomic_write_text(out / "config.json", json.dumps(payload, indent=2))
    return run


def _model_config_for(model_config, data: Dataset, pretrained: Pretrained | None = None) -> ModelConfig:
    if model_config is None:
        model_config = choose_model_config(data, pretrained=pretrained)
    elif not isinstance(model_config, ModelConfig):
        # a function of the opened data (the CLI's --model choice), and of the weights when there are some
        model_config = model_config(data) if pretrained is None else model_config(data, pretrained)
    if "num_classes" not in model_config.options:
        model_config = model_config.with_options(num_classes=data.num_classes)
    if model_config.options["num_classes"] != data.num_classes:
        raise SqueezelabError(f"the model has {model_config.options['num_classes']} classes but the data has "
                              f"{data.num_classes}; drop num_classes or match it")
    return model_config


def _restore(run: Run, state: dict) -> None:
    run.epochs.optimizer.load_state_dict(state["optimizer"])
    run.epochs.scheduler.load_state_dict(state["scheduler"])
    run.history = list(state.get("history", []))
    run.best = dict(state.get("best", run.best))
    run.first_epoch = int(state["epoch"]) + 1


def _start_line(run: Run) -> str:
    e, data = run.epochs, run.epochs.data
    return (f"training {run.model_config.name} on {data.config.spec}: {len(data.train)} train / {len(data.val)} val "
            f"images, {data.num_classes} classes, {data.image_size}px, {e.config.epochs} epochs on {e.device}"
            + (f" x {e.info.world_size} processes" if e.info.enabled else "")
            + (f"; skipped {len(data.skipped)} bad images" if data.skipped else ""))


def run_epochs(run: Run, say: Callable[[str], None], progress: bool) -> None:
    """Epochs from `run.first_epoch` to the last, each checkpointed; Ctrl-C saves interrupted.pt."""
    e = run.epochs
    epoch = run.first_epoch - 1
    try:
        for epoch in range(run.first_epoch, e.config.epochs + 1):
            bar = _progress(progress and e.info.is_main, e.batches_per_epoch, f"epoch {epoch}/{e.config.epochs}")
            row, run.last_val = run_epoch(e, epoch, bar)
            _record(run, row, say)
    except KeyboardInterrupt:
        if e.info.is_main:
            path = run.out / "interrupted.pt"
            save_checkpoint(path, {**run.payload, "state_dict": e.model.state_dict(), "epoch": max(epoch - 1, 0),
                                   "interrupted": True})
            print(f"squeezelab: interrupted during epoch {epoch}: weights saved to {path}; "
                  f"`--resume` continues from {run.out / 'last.pt'}", file=sys.stderr)
        raise


def _record(run: Run, row: dict, say: Callable[[str], None]) -> None:
    """Log the epoch; on rank 0 save last.pt (and best.pt when it improved) and metrics.csv."""
    e, epoch = run.epochs, row["epoch"]
    run.history.append(row)
    improved = row["val_acc"] > run.best["val_acc"]
    if improved:
        run.best = {"val_acc": row["val_acc"], "epoch": epoch}
    say(f"epoch {epoch:>3}/{e.config.epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}"
        f"  val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  lr {row['lr']:.4g}  {row['seconds']:.1f}s"
        + ("  *" if improved else ""))
    if not e.info.is_main:
        return
    checkpoint = {**run.payload, "state_dict": e.model.state_dict(), "optimizer": e.optimizer.state_dict(),
                  "scheduler": e.scheduler.state_dict(), "rng": _rng_state(), "epoch": epoch,
                  "metrics": {**row, "top1": row["val_acc"]}, "best": run.best, "history": run.history}
    if improved:  # the optimizer state is for resuming, which reads last.pt
        save_checkpoint(run.out / "best.pt", {k: v for k, v in checkpoint.items() if k not in ("optimizer", "scheduler")})
    save_checkpoint(run.out / "last.pt", checkpoint)
    write_metrics_csv(run.out / "metrics.csv", run.history)


def finish(run: Run, seconds: float) -> dict:
    """The result dict; on rank 0 also result.json and the final reports (report.training)."""
    e, data, out, history = run.epochs, run.epochs.data, run.out, run.history
    result = {
        "best_val_acc": run.best["val_acc"], "best_epoch": run.best["epoch"],
        "final_val_acc": history[-1]["val_acc"] if history else None,
        "final_val_loss": history[-1]["val_loss"] if history else None,
        "epochs": len(history), "seconds": round(seconds, 2),
        "checkpoint": str(out / "best.pt"), "last_checkpoint": str(out / "last.pt"), "out": str(out),
        "device": str(e.device), "world_size": e.info.world_size, "train_images": len(data.train),
        "val_images": len(data.val), "skipped_images": len(data.skipped),
        "model": run.model_config.to_dict(), "data": data.config.spec,
        "provenance": Provenance.current().to_dict(),
    }
    if e.info.is_main:
        atomic_write_text(out / "result.json", json.dumps(result, indent=2))
        if run.last_val is not None:
            write_run_reports(out, history, run.last_val)
    return result


def _batches_per_epoch(n: int, batch_size: int, world_size: int) -> int:
    per_rank = math.ceil(n / world_size)
    return per_rank // batch_size if per_rank > batch_size else 1


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


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
    speed = speed or runtime.SpeedConfig()
    dev = torch.device(device) if device else next(model.parameters()).device
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer, weight_decay=weight_decay,
                         label_smoothing=label_smoothing, warmup_epochs=min(1.0, epochs / 4), stuck_steps=0, seed=seed,
                         schedule="cosine", pretrained_lr_factor=1.0, recipe="scratch")
    e = make_epochs(runtime.prepare_model(model, dev, speed), data, config, dev, speed)
    history = []
    for epoch in range(1, epochs + 1):
        row, _ = run_epoch(e, epoch)
        history.append(row)
        if log:
            log(f"fine-tune epoch {epoch}/{epochs}  train loss {row['train_loss']:.4f}  val acc {row['val_acc']:.4f}")
    e.model.eval()
    return history
