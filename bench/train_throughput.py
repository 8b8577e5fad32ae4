"""Training throughput: squeezelab's training path vs a plain torchvision eager fp32 loop.

Both sides train the same architecture (torchvision's module layout; squeezelab's models load
torchvision state dicts strictly) on the same synthetic batch, with SGD (momentum 0.9), in the
same run. Each side has its own process, because some of squeezelab's switches are process-wide
(threads, the allocator): the reference process is a plain script with torch's defaults. Rounds
alternate reference and squeezelab steps (one process waits while the other runs) so that load
from other processes hits both sides alike; images/s are from the median round, and the ratio
is the median of the per-round ratios.

    python bench/train_throughput.py --quick     # squeezenet1_1 224x224 batch 32 only
    python bench/train_throughput.py             # + squeezenet1_0 224 b32, small stem 32x32 b256

The last line is `ratio=<number>` for squeezenet1_1 at 224 (the headline figure).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import statistics
import time

import torch
import torchvision
from torch import nn

from squeezelab.models import create_model
from squeezelab import runtime
from squeezelab.train.loop import train_one_epoch
from squeezelab.utils.timing import Column, format_table


@dataclasses.dataclass(frozen=True)
class Case:
    label: str
    reference: callable  # builds the plain model
    squeezelab: callable  # builds squeezelab's model (same architecture)
    size: int
    batch: int
    classes: int


def cases(quick: bool) -> list[Case]:
    sn11 = Case(
        "squeezenet1_1 224 b32",
        lambda: torchvision.models.squeezenet1_1(num_classes=1000),
        lambda: create_model("squeezenet1_1", num_classes=1000),
        224, 32, 1000,
    )
    if quick:
        return [sn11]
    return [
        Case(
            "squeezenet1_0 224 b32",
            lambda: torchvision.models.squeezenet1_0(num_classes=1000),
            lambda: create_model("squeezenet1_0", num_classes=1000),
            224, 32, 1000,
        ),
        # torchvision has no small-stem SqueezeNet: the reference is the same squeezelab model
        # run the plain way (its fast path off, NCHW, a for-loop SGD).
        Case(
            "small-stem 32 b256",
            lambda: create_model("squeezenet1_1", stem="small", num_classes=10),
            lambda: create_model("squeezenet1_1", stem="small", num_classes=10),
            32, 256, 10,
        ),
        sn11,
    ]


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


def squeezelab_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: runtime.SpeedConfig):
    """squeezelab's training step: the trainer's own epoch function (squeezelab.train.loop) over
    one batch, with the model prepared by runtime.prepare_model as the trainer does."""
    device = torch.device("cpu")
    model = runtime.prepare_model(model, device, config)
    model.train()
    opt = torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4,
        **runtime.optimizer_options(torch.optim.SGD, device, config),
    )
    return lambda: train_one_epoch(model, [(x, y)], opt, None, device=device, speed=config)


# oneDNN primitive creation, and the allocator: with keep_freed_memory the heap grows for about
# six steps before a step stops page-faulting (measured: 196k, 31k, 7k, 0.4k, ... then 0 faults).
WARMUP_STEPS = 6


TABLE = [  # the layout of bench/inference.py's table (squeezelab.utils.timing)
    Column("case", "case", width=24),
    Column("reference", "reference img/s", "{:.1f}", 17),
    Column("squeezelab", "squeezelab img/s", "{:.1f}", 18),
    Column("ratio", "ratio", "{:.2f}", 7),
    Column("ratio_min", "min", "{:.2f}", 6),
    Column("ratio_max", "max", "{:.2f}", 6),
]


def _side(conn, side: str, label: str, config: dict) -> None:
    """One side of a case, in its own process: build, warm up, then time `n` steps per request."""
    case = next(c for c in cases(quick=False) if c.label == label)
    torch.manual_seed(0)
    x = torch.randn(case.batch, 3, case.size, case.size)
    y = torch.randint(0, case.classes, (case.batch,))
    if side == "reference":
        step = plain_step(case.reference(), x, y)
    else:
        speed = runtime.SpeedConfig.from_dict(config)
        runtime.configure_process(speed)
        step = squeezelab_step(case.squeezelab(), x, y, speed)
    for _ in range(WARMUP_STEPS):
        step()
    conn.send(torch.get_num_threads())
    while (steps := conn.recv()) is not None:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        conn.send(time.perf_counter() - start)


def measure(case: Case, rounds: int, steps: int, config: runtime.SpeedConfig) -> dict:
    spawn = multiprocessing.get_context("spawn")
    conns, procs, threads = {}, [], {}
    for side in ("reference", "squeezelab"):
        conns[side], child = spawn.Pipe()
        procs.append(spawn.Process(target=_side, args=(child, side, case.label, config.to_dict()), daemon=True))
        procs[-1].start()
    try:
        for side, conn in conns.items():
            threads[side] = conn.recv()
        times = {side: [] for side in conns}
        for r in range(rounds):
            for side in (("reference", "squeezelab") if r % 2 == 0 else ("squeezelab", "reference")):
                conns[side].send(steps)
                times[side].append(conns[side].recv())
    finally:
        for conn in conns.values():
            conn.send(None)
        for proc in procs:
            proc.join(timeout=30)
    images = case.batch * steps
    ratios = [tr / to for tr, to in zip(times["reference"], times["squeezelab"])]
    return {
        "case": case.label,
        "reference": images / statistics.median(times["reference"]),
        "squeezelab": images / statistics.median(times["squeezelab"]),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "threads": threads,
    }


def data_throughput(spec: str, batch: int, seconds: float = 3.0) -> float:
    """Images/s of the trainer's input pipeline alone (decode-once tensors, batched augmentation)."""
    from squeezelab.data.config import DataConfig
    from squeezelab.data.datasets import open_dataset

    data = open_dataset(DataConfig(spec, image_size=32))
    images, start, epoch = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for x, _ in data.batches("train", batch, epoch=epoch):
            images += len(x)
        epoch += 1
    return images / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="squeezenet1_1 at 224 only")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 7 quick, 5 full)")
    parser.add_argument("--steps", type=int, default=2, help="training steps per round and side")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    parser.add_argument("--no-fused", action="store_true", help="squeezelab side without the fused path")
    parser.add_argument("--no-fused-optimizer", action="store_true", help="the per-parameter SGD loop")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--no-keep-freed-memory", action="store_true", help="glibc's default allocator behaviour")
    args = parser.parse_args(argv)
    config = runtime.SpeedConfig(
        channels_last=not args.no_channels_last,
        fused=not args.no_fused,
        fused_optimizer=not args.no_fused_optimizer,
        threads=args.threads,
        keep_freed_memory=not args.no_keep_freed_memory,
    )
    runtime.configure_process(config)
    rounds = args.rounds or (7 if args.quick else 5)
    rows = [measure(case, rounds, args.steps, config) for case in cases(args.quick)]
    threads = rows[0]["threads"]
    print(f"torch {torch.__version__}, {rounds} rounds x {args.steps} steps, one process per side; threads: "
          f"reference {threads['reference']} (torch's default), squeezelab {threads['squeezelab']}")
    print(f"squeezelab: {config}")
    print(format_table(rows, TABLE))
    small = next((r for r in rows if r["case"].startswith("small-stem")), None)
    for spec in ("digits", "synthetic:n=4096,classes=10,size=32"):
        rate = data_throughput(spec, 256)
        vs = f", {rate / small['squeezelab']:.1f}x small-stem training" if small else ""
        print(f"data pipeline {spec} 32x32 b256: {rate:.0f} img/s{vs}")
    print(f"ratio={rows[-1]['ratio']:.2f}")


if __name__ == "__main__":
    main()
