"""Training throughput: squeezelab's Trainer against a plain torchvision eager fp32 loop, its bf16
step against its fp32 step, and a whole training epoch on real JPEGs against the step.

Per case, in the same run:
- reference: what a plain torchvision training loop does (eager fp32 NCHW, per-parameter SGD), in
  its own process with torch's defaults (squeezelab's allocator and thread settings are
  process-wide, so they must not leak into it);
- step fp32 / step auto: `Trainer.train_step`, the step `squeezelab train` runs, on a fixed
  batch, with `--amp off` and with the default `--amp auto` (bf16 on CPUs with AMX-BF16);
- epoch fp32: `Trainer.train_epoch` over real JPEGs (a class-balanced slice of
  ../shared/data/flower-photos at 224 px, of the CIFAR-10 JPEGs at 32 px): decoding, resizing,
  augmentation and batching included, the data path's cost made visible. Skipped, with a line,
  where the shared data is absent.
Rounds alternate the measurements (the order reversed every other round) so that load from other
processes hits all alike; images/s are medians over rounds, ratios medians of per-round ratios.

    python bench/train_throughput.py --quick     # squeezenet1_1 224 b32 only
    python bench/train_throughput.py             # + squeezenet1_0 227 b32, squeezenet_cifar 32 b256

The last line is `ratio=<number>`: squeezelab's fp32 step over the reference for squeezenet1_1 at 224.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

from squeezelab import runtime
from squeezelab.utils.timing import Column, format_table

SHARED = Path(os.environ.get("SQUEEZELAB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
FLOWERS = SHARED / "flower-photos" / "train"


@dataclasses.dataclass(frozen=True)
class Case:
    label: str
    model: str  # registry name; the reference is torchvision's model of the same name, where it has one
    options: dict
    size: int
    batch: int
    classes: int
    photos: str  # "flowers" or "cifar10": the real JPEGs the whole epoch reads


CASES = [
    Case("squeezenet1_0 227 b32", "squeezenet1_0", {}, 227, 32, 1000, "flowers"),
    Case("squeezenet_cifar 32 b256", "squeezenet_cifar", {}, 32, 256, 10, "cifar10"),
    Case("squeezenet1_1 224 b32", "squeezenet1_1", {}, 224, 32, 1000, "flowers"),
]


def cases(quick: bool) -> list[Case]:
    return CASES[-1:] if quick else CASES


def reference_model(case: Case) -> nn.Module:
    """torchvision's model, or (for squeezenet_cifar, which torchvision lacks) squeezelab's run the plain way."""
    if hasattr(torchvision.models, case.model):
        return getattr(torchvision.models, case.model)(num_classes=case.classes)
    from squeezelab.models import create_model

    return create_model(case.model, num_classes=case.classes, **case.options)


def plain_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """The reference: what a plain torchvision training loop does, eager fp32 NCHW."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> float:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def trainer_for(case: Case, amp: str, data=None):
    """squeezelab's Trainer for the case (SGD at a small constant rate: the speed, not the
    schedule, is measured), over `data` or a synthetic set of the case's shape."""
    from squeezelab.data import DataConfig, open_dataset
    from squeezelab.models.config import ModelConfig
    from squeezelab.train.config import TrainConfig
    from squeezelab.train.trainer import Trainer

    classes = case.classes if data is None else data.num_classes
    if data is None:  # only sizes the (constant) schedule: the timed batch is the caller's
        data = open_dataset(DataConfig(f"synthetic:n={case.batch},classes=2,size={case.size}"))
    config = TrainConfig.given(batch_size=case.batch, lr=0.01, device="cpu")
    torch.manual_seed(0)
    model = ModelConfig(case.model, {**case.options, "num_classes": classes}).build()
    return Trainer(model, data, config, speed=runtime.SpeedConfig(amp=amp))


def photo_data(case: Case, images_per_class: int):
    """A class-balanced slice of real JPEGs at the case's size, as `squeezelab train` opens it (a
    list file of paths and labels, so nothing is copied)."""
    from squeezelab.data import DataConfig, open_dataset
    from squeezelab.data.config import ALL_IMAGES

    if case.photos == "flowers":
        root = FLOWERS
    else:
        from _data import cifar10_root

        root = cifar10_root() / "train"
    if not root.is_dir():
        return None
    lines = [f"{path} {folder.name}" for folder in sorted(p for p in root.iterdir() if p.is_dir())
             for path in sorted(folder.iterdir())[:images_per_class]]
    listing = Path(tempfile.mkdtemp(prefix="sqz-bench-")) / "images.txt"
    listing.write_text("\n".join(lines) + "\n")
    return open_dataset(DataConfig(str(listing), image_size=case.size, split=ALL_IMAGES))


# oneDNN primitive creation, and the allocator: with keep_freed_memory the heap grows for about
# six steps before a step stops page-faulting (measured: 196k, 31k, 7k, 0.4k, ... then 0 faults).
WARMUP_STEPS = 6


def _side(conn, side: str, label: str, epoch_images: int) -> None:
    """One process: the reference, or every squeezelab measurement. Answers timing requests
    (a measurement's name and a step count) with seconds and images."""
    case = next(c for c in CASES if c.label == label)
    torch.manual_seed(0)
    x = torch.randn(case.batch, 3, case.size, case.size)
    y = torch.randint(0, case.classes, (case.batch,))
    if side == "reference":
        step = plain_step(reference_model(case), x, y)
        measures = {"reference": lambda n: _repeat(step, n, case.batch)}
    else:
        runtime.configure_process(runtime.SpeedConfig())
        fp32, auto = trainer_for(case, "off"), trainer_for(case, "auto")
        measures = {"step fp32": lambda n: _repeat(lambda: fp32.train_step(x, y), n, case.batch),
                    "step auto": lambda n: _repeat(lambda: auto.train_step(x, y), n, case.batch)}
        photos = photo_data(case, epoch_images // 5 if case.photos == "flowers" else epoch_images // 10)
        if photos is not None:
            epoch_trainer = trainer_for(case, "off", photos)
            measures["epoch fp32"] = lambda _n: _epoch(epoch_trainer)
        conn.send(("precision", auto.precision.amp, auto.precision.reason))
    for name, measure in measures.items():
        measure(WARMUP_STEPS if name != "epoch fp32" else 1)
    conn.send(("ready", sorted(measures), torch.get_num_threads()))
    while (request := conn.recv()) is not None:
        conn.send(measures[request[0]](request[1]))


def _repeat(step, steps: int, batch: int) -> tuple[float, int]:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start, steps * batch


def _epoch(trainer) -> tuple[float, int]:
    start = time.perf_counter()
    sums = trainer.train_epoch(1)
    return time.perf_counter() - start, int(sums[2])


def measure(case: Case, rounds: int, steps: int, epoch_images: int) -> dict:
    spawn = multiprocessing.get_context("spawn")
    conns, procs = {}, []
    for side in ("reference", "squeezelab"):
        conns[side], child = spawn.Pipe()
        # not daemonic: the timed epoch starts data-loading workers of its own
        procs.append(spawn.Process(target=_side, args=(child, side, case.label, epoch_images)))
        procs[-1].start()
    try:
        owner, info = {}, {}
        for side, conn in conns.items():
            while (message := conn.recv())[0] != "ready":
                info["precision"] = message[1:]
            owner.update({name: side for name in message[1]})
            info[side] = message[2]
        rates = {name: [] for name in owner}
        order = list(owner)
        for r in range(rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                conns[owner[name]].send((name, steps))
                seconds, images = conns[owner[name]].recv()
                rates[name].append(images / seconds)
    finally:
        for conn in conns.values():
            conn.send(None)
        for proc in procs:
            proc.join(timeout=30)
    row = {"case": case.label, **{name: statistics.median(values) for name, values in rates.items()},
           "threads": info, "precision": info.get("precision")}
    ratio = lambda a, b: statistics.median(x / y for x, y in zip(rates[a], rates[b]))  # noqa: E731
    row["fp32 / ref"] = ratio("step fp32", "reference")
    row["auto / fp32"] = ratio("step auto", "step fp32")
    if "epoch fp32" in rates:
        row["epoch / step"] = ratio("epoch fp32", "step fp32")
    return row


TABLE = [
    Column("case", "case", width=26),
    Column("reference", "reference img/s", "{:.1f}", 16),
    Column("step fp32", "step fp32", "{:.1f}", 10),
    Column("step auto", "step auto", "{:.1f}", 10),
    Column("epoch fp32", "epoch fp32", "{:.1f}", 11),
    Column("fp32 / ref", "fp32/ref", "{:.2f}", 9),
    Column("auto / fp32", "auto/fp32", "{:.2f}", 10),
    Column("epoch / step", "epoch/step", "{:.2f}", 11),
]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="squeezenet1_1 at 224 only")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--steps", type=int, default=2, help="training steps per round and step measurement")
    parser.add_argument("--epoch-images", type=int, default=320,
                        help="real JPEGs in the timed epoch (class-balanced; default 320)")
    args = parser.parse_args(argv)
    rows = [measure(case, args.rounds, args.steps, args.epoch_images) for case in cases(args.quick)]
    threads = rows[0]["threads"]
    amp, reason = rows[0]["precision"]
    print(f"{cpu_model()}; torch {torch.__version__}; {args.rounds} rounds x {args.steps} steps; threads: "
          f"reference {threads['reference']} (torch's default), squeezelab {threads['squeezelab']}; "
          f"--amp auto trains in {amp} ({reason}); load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(format_table(rows, TABLE))
    if not any("epoch fp32" in row for row in rows):
        print(f"epoch fp32: skipped ({SHARED} has no flower-photos or CIFAR-10 archive)")
    print(f"ratio={rows[-1]['fp32 / ref']:.2f}")


if __name__ == "__main__":
    main()
