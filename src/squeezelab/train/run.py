"""`train(...)`: a whole run into an output folder. The recipe is `train.recipe`'s, the loop
`train.trainer`'s; this module keeps the folder: resume, checkpoints, reports.

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

from squeezelab import runtime
from squeezelab.data import DataConfig, Dataset, open_dataset
from squeezelab.errors import SqueezelabError, SqueezelabWarning
from squeezelab.evaluate import EvalResult
from squeezelab.models.config import ModelConfig
from squeezelab.models.record import Provenance
from squeezelab.preprocessing import Preprocessing
from squeezelab.report.training import write_metrics_csv, write_run_reports
from squeezelab.train import distributed, recipe
from squeezelab.train.checkpoint import load_checkpoint, save_checkpoint
from squeezelab.train.config import TrainConfig
from squeezelab.train.trainer import Trainer, resolve_device, start_model
from squeezelab.train.transfer import Pretrained, input_preprocessing, open_pretrained
from squeezelab.utils.atomic import atomic_write_text, remove_stale_temporaries


def check_writable(out: Path) -> None:
    """Fail before training, not after an hour, when --out cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / ".write-test", "ok")
        (out / ".write-test").unlink()
    except OSError as exc:
        raise SqueezelabError(f"cannot write to --out {out}: {exc.strerror or exc}; pick a writable folder") from None


@dataclasses.dataclass
class Run:
    """A training run in progress: its trainer, where it writes, and what it has done so far."""

    trainer: Trainer
    model_config: ModelConfig
    out: Path
    payload: dict  # config.json, and the head of every checkpoint
    history: list[dict] = dataclasses.field(default_factory=list)
    best: dict = dataclasses.field(default_factory=lambda: {"val_acc": -1.0, "epoch": 0})
    first_epoch: int = 1
    last_val: EvalResult | None = None


def train(model_config: ModelConfig | Callable | None = None, data_config: DataConfig = DataConfig(),
          train_config: TrainConfig = TrainConfig(), speed: runtime.SpeedConfig = runtime.SpeedConfig(),
          out: str = "runs/latest", *, resume: bool = False, resume_epochs: int | None = None,
          progress: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Train from configs, writing checkpoints and reports to `out`; returns the result dict that
    `squeezelab train --json` prints: best_val_acc (fraction), best_epoch, final_val_acc, epochs,
    seconds, checkpoint (best.pt), last_checkpoint, out, device, amp, amp_reason, world_size,
    train_images, val_images, skipped_images, model, data, provenance (squeezelab version and git
    revision).

    model_config None: the recipe's (`train.recipe.default_model_config`); a callable: called with
    the opened Dataset (and the weights, when there are some). resume: continue from out/last.pt
    with the configs recorded there (`resume_epochs`: a new total, see `TrainConfig.resumed`).
    Under torchrun, each rank calls this and only rank 0 writes.

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
        run = open_run(model_config, data_config, train_config, speed, device, info, out, state=state, log=say)
        if info.is_main and not resume and (out / "last.pt").is_file():  # said once the new run can start
            warnings.warn(f"{out} holds a run already; it is replaced (--resume continues it instead, or pick "
                          "another --out)", SqueezelabWarning, stacklevel=2)
        say(_start_line(run))
        _fit(run, say, progress)
        return finish(run, time.perf_counter() - start)
    finally:
        distributed.cleanup(info)


def _join(device_name: str):
    """The device, and this process's place among torchrun's ranks (each rank on its own GPU)."""
    import torch

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


def choose_start(train_config: TrainConfig, data_config: DataConfig, model_config,
                 log: Callable[[str], None]) -> TrainConfig:
    """`train_config` with the weights the run starts from (`train.recipe.start_weights`): photo
    folders start from the shipped ImageNet weights unless told otherwise. Only a folder's image
    headers are read to learn its size."""
    size = data_config.image_size
    if size is None and train_config.weights is None:
        from squeezelab.data.datasets import default_side

        size = default_side(data_config.spec)
    name = model_config if isinstance(model_config, str) else getattr(model_config, "name", None)
    weights, why = recipe.start_weights(train_config.weights, size or 0, name)
    if why:
        log(why)
    return train_config.replace(weights=weights)


def open_data(data_config: DataConfig, pretrained: Pretrained | None, state: dict | None = None) -> Dataset:
    """The run's data, fed as the weights expect (size, channel order, normalisation) unless the
    data config sets the size; a resumed fine-tuning run keeps the input it started with."""
    if pretrained is not None and data_config.image_size is None:
        data_config = data_config.replace(image_size=pretrained.preprocessing.crop)
    data = open_dataset(data_config)
    if pretrained is not None:
        data.preprocessing = input_preprocessing(pretrained, data.preprocessing)
    elif state is not None and state.get("train", {}).get("weights"):
        data.preprocessing = Preprocessing.from_dict(state["preprocessing"])
    return data


def open_run(model_config, data_config: DataConfig, train_config: TrainConfig, speed: runtime.SpeedConfig,
             device, info: distributed.DistInfo, out: Path, *, state: dict | None = None,
             log: Callable[[str], None] = lambda _msg: None) -> Run:
    """Open the data, resolve the recipe (`train.recipe.plan`), start the model (pretrained
    weights, frozen features, whitened stem, or the resumed state) and its trainer; write
    config.json."""
    if state is None:
        train_config = choose_start(train_config, data_config, model_config, log)
    pretrained = open_pretrained(train_config.weights) if train_config.weights and state is None else None
    data = open_data(data_config, pretrained, state)
    facts = recipe.DataFacts(data.image_size, data.num_classes, math.ceil(len(data.train) / info.world_size))
    plan = recipe.plan(facts, train_config, model_config, pretrained, resumed=state is not None)
    if data.augment is not None and plan.augment:
        data.augment = dataclasses.replace(data.augment, **plan.augment)
    model = start_model(plan, data, pretrained, log)
    if state is not None:
        model.load_state_dict(state["state_dict"])
    trainer = Trainer(model, data, plan.train, device=device, speed=speed, info=info)
    payload = {"model": plan.model.to_dict(), "classes": list(data.classes),
               "preprocessing": data.preprocessing.to_dict(), "data": data.config.to_dict(),
               "train": plan.train.to_dict(), "speed": speed.to_dict()}
    recorded = (state or {}).get("provenance", {}).get("weights")
    weights_name = (pretrained.record or pretrained.spec) if pretrained else recorded
    if weights_name:
        payload["provenance"] = {"weights": weights_name}
    run = Run(trainer, plan.model, out, payload)
    if state is not None:
        trainer.load_state_dict(state)
        run.history = list(state.get("history", []))
        run.best = dict(state.get("best", run.best))
        run.first_epoch = int(state["epoch"]) + 1
    if info.is_main:
        atomic_write_text(out / "config.json", json.dumps(payload, indent=2))
    return run


def _start_line(run: Run) -> str:
    t, data = run.trainer, run.trainer.data
    start = recipe.start_name(t.config.weights)
    return (f"training {run.model_config.name} from {start if start == 'scratch' else start + ' weights'} on "
            f"{data.config.spec}: {len(data.train)} train / {len(data.val)} val "
            f"images, {data.num_classes} classes, {data.image_size}px, {t.config.epochs} epochs on {t.device}"
            + (f" x {t.info.world_size} processes" if t.info.enabled else "")
            + f", {t.precision.amp} ({t.precision.reason})"
            + (f"; skipped {len(data.skipped)} bad images" if data.skipped else ""))


def _fit(run: Run, say: Callable[[str], None], progress: bool) -> None:
    """Epochs from `run.first_epoch` to the last, each checkpointed; Ctrl-C saves interrupted.pt."""
    t = run.trainer
    show = progress and t.info.is_main
    bar = (lambda epoch: _progress(t.batches_per_epoch, f"epoch {epoch}/{t.config.epochs}")) if show else None
    try:
        t.fit(first=run.first_epoch, on_epoch=lambda row, val: _record(run, row, val, say), progress=bar)
    except KeyboardInterrupt:
        if t.info.is_main:
            epoch = run.history[-1]["epoch"] + 1 if run.history else run.first_epoch
            path = run.out / "interrupted.pt"
            save_checkpoint(path, {**run.payload, "state_dict": t.model.state_dict(), "epoch": max(epoch - 1, 0),
                                   "interrupted": True})
            print(f"squeezelab: interrupted during epoch {epoch}: weights saved to {path}; "
                  f"`--resume` continues from {run.out / 'last.pt'}", file=sys.stderr)
        raise


def _record(run: Run, row: dict, val: EvalResult, say: Callable[[str], None]) -> None:
    """Log the epoch; on rank 0 save last.pt (and best.pt when it improved) and metrics.csv."""
    t, epoch = run.trainer, row["epoch"]
    run.history.append(row)
    run.last_val = val
    improved = row["val_acc"] > run.best["val_acc"]
    if improved:
        run.best = {"val_acc": row["val_acc"], "epoch": epoch}
    say(f"epoch {epoch:>3}/{t.config.epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}"
        f"  val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  lr {row['lr']:.4g}  {row['seconds']:.1f}s"
        + ("  *" if improved else ""))
    if not t.info.is_main:
        return
    checkpoint = {**run.payload, "state_dict": t.model.state_dict(), **t.state_dict(), "epoch": epoch,
                  "metrics": {**row, "top1": row["val_acc"]}, "best": run.best, "history": run.history}
    if improved:  # the optimizer state is for resuming, which reads last.pt
        weights_only = {k: v for k, v in checkpoint.items() if k not in ("optimizer", "scheduler")}
        save_checkpoint(run.out / "best.pt", weights_only)
    save_checkpoint(run.out / "last.pt", checkpoint)
    write_metrics_csv(run.out / "metrics.csv", run.history)


def finish(run: Run, seconds: float) -> dict:
    """The result dict; on rank 0 also result.json and the final reports (report.training)."""
    t, data, out, history = run.trainer, run.trainer.data, run.out, run.history
    result = {
        "best_val_acc": run.best["val_acc"], "best_epoch": run.best["epoch"],
        "final_val_acc": history[-1]["val_acc"] if history else None,
        "final_val_loss": history[-1]["val_loss"] if history else None,
        "epochs": len(history), "seconds": round(seconds, 2),
        "checkpoint": str(out / "best.pt"), "last_checkpoint": str(out / "last.pt"), "out": str(out),
        "start": recipe.start_name(t.config.weights), "device": str(t.device),
        "amp": t.precision.amp, "amp_reason": t.precision.reason,
        "world_size": t.info.world_size, "train_images": len(data.train),
        "val_images": len(data.val), "skipped_images": len(data.skipped),
        "model": run.model_config.to_dict(), "data": data.config.spec,
        "provenance": Provenance.current().to_dict(),
    }
    if t.info.is_main:
        atomic_write_text(out / "result.json", json.dumps(result, indent=2))
        if run.last_val is not None:
            write_run_reports(out, history, run.last_val)
    return result


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)

