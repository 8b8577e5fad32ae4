"""`train(...)`: a whole run from configs to an output folder; `fine_tune(...)`: more epochs for a
model already in memory (used by compression to recover accuracy after pruning).

A run writes into `out`: last.pt (every epoch) and best.pt (best validation accuracy), both
atomically; metrics.csv; config.json; result.json; curves.png and confusion.png with per-class
precision/recall (per_class.csv). Every epoch is seeded from (seed, epoch), so a run resumed from
last.pt (even after SIGKILL) ends with the same metrics as one that was never interrupted.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from squeezelab.data import DataConfig, Dataset, open_dataset
from squeezelab.errors import SqueezelabError
from squeezelab.evaluate import confusion_sums, result_from_sums
from squeezelab.models.config import ModelConfig
from squeezelab.models.weights import read_state_dict
from squeezelab.train import distributed, performance
from squeezelab.train.checkpoint import load_checkpoint, save_checkpoint
from squeezelab.train.config import TrainConfig
from squeezelab.train.loop import LossGuard, train_one_epoch
from squeezelab.train.schedule import lr_factor
from squeezelab.utils.atomic import atomic_write_text, remove_stale_temporaries

METRIC_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]


def default_model_config(data: Dataset, name: str = "squeezenet1_1", **options) -> ModelConfig:
    """The model that converges from scratch on `data` (see docs/training.md): SqueezeNet 1.1 with
    batch norm, no ReLU after the final conv, and the small stem (3x3 stride 1, no first pool) for
    images of 64 px or less, where the standard stem would shrink a 32x32 digit to 7x7 at once."""
    defaults = {"num_classes": data.num_classes, "batch_norm": True, "final_relu": False}
    if name.startswith("squeezenet"):
        defaults["stem"] = "small" if data.image_size <= 64 else "standard"
    else:
        defaults = {"num_classes": data.num_classes}
    return ModelConfig(name, {**defaults, **{k: v for k, v in options.items() if v is not None}})


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SqueezelabError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return device


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on conv/linear weights only: decaying biases and batch-norm scales only hurts."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SqueezelabError("the model has no trainable parameters (all frozen?)")
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
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


def load_pretrained(model: nn.Module, path: str) -> None:
    """Load a torchvision-format state_dict or a squeezelab checkpoint, except a classifier whose
    shape differs (the new head for the user's classes keeps its fresh initialisation)."""
    p = Path(path)
    data = read_state_dict(p)  # weights_only; a squeezelab checkpoint gives its state_dict
    own = model.state_dict()
    usable = {k: v for k, v in data.items() if k in own and own[k].shape == v.shape}
    if not any(k.startswith("features.") for k in usable):
        raise SqueezelabError(f"--weights {p} does not fit this model (no feature layer matches); check --model and its options")
    model.load_state_dict(usable, strict=False)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state()}


def train(model_config: ModelConfig | None = None, data_config: DataConfig = DataConfig(),
          train_config: TrainConfig = TrainConfig(), speed: performance.SpeedConfig = performance.SpeedConfig(),
          out: str = "runs/latest", *, resume: bool = False, progress: bool = False,
          log: Callable[[str], None] | None = None) -> dict:
    """Train from configs, writing checkpoints and reports to `out`; returns the result dict that
    `squeezelab train --json` prints: best_val_acc (fraction), best_epoch, final_val_acc, epochs,
    seconds, checkpoint (best.pt), last_checkpoint, out, device, world_size, train_images,
    val_images, skipped_images, model, data.

    model_config None: `default_model_config(data)`; a callable: called with the opened Dataset. resume: continue from out/last.pt with the
    configs recorded there. Under torchrun, each rank calls this and only rank 0 writes.

    >>> result = train(data_config=DataConfig("synthetic:n=64,classes=2"),
    ...                train_config=TrainConfig(epochs=1), out="/tmp/sqz-doctest")  # doctest: +SKIP
    """
    start = time.perf_counter()
    out = Path(out)
    device = resolve_device(train_config.device)
    info = distributed.setup(device.type)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    say = log if (log and info.is_main) else (lambda _msg: None)
    try:
        if info.is_main:
            check_writable(out)
            remove_stale_temporaries(out)  # a run killed mid-write (SIGKILL) leaves its temporary
        performance.configure_process(speed)
        state = None
        if resume:
            last = out / "last.pt"
            if not last.is_file():
                raise SqueezelabError(f"--resume: {last} does not exist; start the run without --resume")
            state = load_checkpoint(last)
            model_config = ModelConfig.from_dict(state["model"])
            data_config = DataConfig.from_dict(state["data"])
            train_config = TrainConfig.from_dict({**state["train"], "device": train_config.device,
                                                  "workers": train_config.workers})
        data = open_dataset(data_config)
        if model_config is None:
            model_config = default_model_config(data)
        elif not isinstance(model_config, ModelConfig):
            model_config = model_config(data)  # a function of the opened data (the CLI's --model choice)
        if "num_classes" not in model_config.options:
            model_config = model_config.with_options(num_classes=data.num_classes)
        if model_config.options["num_classes"] != data.num_classes:
            raise SqueezelabError(f"the model has {model_config.options['num_classes']} classes but the data has "
                                  f"{data.num_classes}; drop num_classes or match it")
        torch.manual_seed(train_config.seed)
        model = model_config.build()
        if train_config.weights and state is None:
            load_pretrained(model, train_config.weights)
        if train_config.freeze_features:
            for p in model.features.parameters():
                p.requires_grad_(False)
        if state is not None:
            model.load_state_dict(state["state_dict"])
        model = performance.prepare_model(model, device, speed)
        net = nn.parallel.DistributedDataParallel(model) if info.enabled else model
        optimizer = make_optimizer(model, train_config)
        batches_per_epoch = _batches_per_epoch(len(data.train), train_config.batch_size, info.world_size)
        steps_per_epoch = math.ceil(batches_per_epoch / train_config.accumulate)
        scheduler = make_scheduler(optimizer, train_config, steps_per_epoch)
        history: list[dict] = []
        best = {"val_acc": -1.0, "epoch": 0}
        first_epoch = 1
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            history = list(state.get("history", []))
            best = dict(state.get("best", best))
            first_epoch = int(state["epoch"]) + 1
        guard = LossGuard(data.num_classes, train_config.stuck_steps, train_config.lr)
        payload = {
            "model": model_config.to_dict(), "classes": list(data.classes),
            "preprocessing": data.preprocessing.to_dict(), "data": data.config.to_dict(),
            "train": train_config.to_dict(), "speed": speed.to_dict(),
        }
        if info.is_main:
            atomic_write_text(out / "config.json", json.dumps(payload, indent=2))
        say(f"training {model_config.name} on {data_config.spec}: {len(data.train)} train / {len(data.val)} val "
            f"images, {data.num_classes} classes, {data.image_size}px, {train_config.epochs} epochs on {device}"
            + (f" x {info.world_size} processes" if info.enabled else "")
            + (f"; skipped {len(data.skipped)} bad images" if data.skipped else ""))
        epoch = first_epoch - 1
        last_sums = None
        try:
            for epoch in range(first_epoch, train_config.epochs + 1):
                epoch_start = time.perf_counter()
                torch.manual_seed(train_config.seed * 1000 + epoch)  # dropout: the same after a resume
                bar = _progress(progress and info.is_main, batches_per_epoch, f"epoch {epoch}/{train_config.epochs}")
                train_sums = train_one_epoch(
                    net, data.batches("train", train_config.batch_size, epoch=epoch, seed=train_config.seed,
                                      rank=info.rank, world_size=info.world_size, workers=train_config.workers),
                    optimizer, scheduler, device=device, speed=speed, label_smoothing=train_config.label_smoothing,
                    accumulate=train_config.accumulate, guard=guard, epoch=epoch, progress=bar)
                if bar is not None:
                    bar.close()
                train_sums = distributed.all_reduce_sum(train_sums, info)
                val_sums = confusion_sums(model, data.batches("val", 256, train=False, rank=info.rank,
                                                              world_size=info.world_size),
                                          data.num_classes, device=device, speed=speed)
                last_sums = distributed.all_reduce_sum(val_sums, info)
                result = result_from_sums(last_sums, data.classes)
                row = {"epoch": epoch, "train_loss": train_sums[0].item() / train_sums[2].item(),
                       "train_acc": train_sums[1].item() / train_sums[2].item(), "val_loss": result.loss,
                       "val_acc": result.top1, "lr": optimizer.param_groups[0]["lr"],
                       "seconds": time.perf_counter() - epoch_start}
                history.append(row)
                improved = row["val_acc"] > best["val_acc"]
                if improved:
                    best = {"val_acc": row["val_acc"], "epoch": epoch}
                say(f"epoch {epoch:>3}/{train_config.epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}"
                    f"  val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  lr {row['lr']:.4g}  {row['seconds']:.1f}s"
                    + ("  *" if improved else ""))
                if info.is_main:
                    checkpoint = {**payload, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                                  "scheduler": scheduler.state_dict(), "rng": _rng_state(), "epoch": epoch,
                                  "metrics": {**row, "top1": row["val_acc"]}, "best": best, "history": history}
                    if improved:
                        save_checkpoint(out / "best.pt", checkpoint)
                    save_checkpoint(out / "last.pt", checkpoint)
                    write_metrics_csv(out / "metrics.csv", history)
        except KeyboardInterrupt:
            if info.is_main and epoch >= first_epoch - 1:
                save_checkpoint(out / "interrupted.pt", {**payload, "state_dict": model.state_dict(),
                                                         "epoch": max(epoch - 1, 0), "interrupted": True})
                print(f"squeezelab: interrupted during epoch {epoch}: weights saved to {out / 'interrupted.pt'}; "
                      f"`--resume` continues from {out / 'last.pt'}", file=sys.stderr)
            raise
        seconds = time.perf_counter() - start
        result = {
            "best_val_acc": best["val_acc"], "best_epoch": best["epoch"],
            "final_val_acc": history[-1]["val_acc"] if history else None,
            "final_val_loss": history[-1]["val_loss"] if history else None,
            "epochs": len(history), "seconds": round(seconds, 2),
            "checkpoint": str(out / "best.pt"), "last_checkpoint": str(out / "last.pt"), "out": str(out),
            "device": str(device), "world_size": info.world_size, "train_images": len(data.train),
            "val_images": len(data.val), "skipped_images": len(data.skipped),
            "model": model_config.to_dict(), "data": data_config.spec,
        }
        if info.is_main:
            atomic_write_text(out / "result.json", json.dumps(result, indent=2))
            if last_sums is not None:
                write_reports(out, history, result_from_sums(last_sums, data.classes))
        return result
    finally:
        distributed.cleanup(info)


def _batches_per_epoch(n: int, batch_size: int, world_size: int) -> int:
    per_rank = math.ceil(n / world_size)
    return per_rank // batch_size if per_rank > batch_size else 1


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def write_reports(out: Path, history: list[dict], final) -> None:
    """per_class.csv, eval.json, curves.png and confusion.png (plots need matplotlib)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["class", "accuracy", "precision", "recall", "support"])
    writer.writeheader()
    writer.writerows(final.per_class)
    atomic_write_text(out / "per_class.csv", buffer.getvalue())
    atomic_write_text(out / "eval.json", json.dumps(final.to_dict(), indent=2))
    from squeezelab.report.plots import plot_confusion, plot_curves

    plot_curves(history, out / "curves.png")
    plot_confusion(final, out / "confusion.png")


def fine_tune(model: nn.Module, data: Dataset, epochs: int, *, lr: float = 0.01, batch_size: int = 64,
              optimizer: str = "sgd", weight_decay: float = 0.0, label_smoothing: float = 0.0,
              device: str | None = None, speed: performance.SpeedConfig | None = None, seed: int = 0,
              log: Callable[[str], None] | None = None) -> list[dict]:
    """Train `model` in place for `epochs` on `data` and return per-epoch metrics.

    Trains whatever parameters the module exposes with requires_grad (including the `weight_orig`
    of torch.nn.utils.prune and the `original` of parametrize, so masks stay applied); never
    rebuilds the model. A short warm-up then cosine decay from `lr`. The model is left in eval
    mode on its original device and memory format is kept.

    >>> history = fine_tune(model, open_dataset("digits"), epochs=2, lr=0.01)  # doctest: +SKIP
    >>> history[-1]["val_acc"]                                                 # doctest: +SKIP
    """
    speed = speed or performance.SpeedConfig()
    dev = torch.device(device) if device else next(model.parameters()).device
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer, weight_decay=weight_decay,
                         label_smoothing=label_smoothing, warmup_epochs=min(1.0, epochs / 4), stuck_steps=0, seed=seed)
    model = performance.prepare_model(model, dev, speed)
    opt = make_optimizer(model, config)
    steps = _batches_per_epoch(len(data.train), batch_size, 1)
    scheduler = make_scheduler(opt, config, steps)
    guard = LossGuard(data.num_classes, 0, lr)
    history = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        torch.manual_seed(seed * 1000 + epoch)
        sums = train_one_epoch(model, data.batches("train", batch_size, epoch=epoch, seed=seed), opt, scheduler,
                               device=dev, speed=speed, label_smoothing=label_smoothing, guard=guard, epoch=epoch)
        val = result_from_sums(confusion_sums(model, data.batches("val", 256), data.num_classes, device=dev,
                                              speed=speed), data.classes)
        row = {"epoch": epoch, "train_loss": sums[0].item() / sums[2].item(), "train_acc": sums[1].item() / sums[2].item(),
               "val_loss": val.loss, "val_acc": val.top1, "lr": opt.param_groups[0]["lr"],
               "seconds": time.perf_counter() - t0}
        history.append(row)
        if log:
            log(f"fine-tune epoch {epoch}/{epochs}  train loss {row['train_loss']:.4f}  val acc {row['val_acc']:.4f}")
    model.eval()
    return history
