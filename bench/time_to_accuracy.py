"""Time to accuracy: the default training recipe with squeezelab's speed switches on vs off.

Both runs use the same recipe, data, split and seed (`squeezelab.train.run.train` with the
default TrainConfig); only the SpeedConfig differs: `SpeedConfig()` (channels_last, fused
conv+ReLU) against `SpeedConfig.plain()` (eager fp32 NCHW, the plain reference loop). Each gets
the same budget of epochs; the wall time to the first epoch at or above the target validation
accuracy is read from the run's metrics.csv (per-epoch seconds, training + validation). Each run
has its own process (some switches are process-wide: threads, the allocator), one after the other.

    python bench/time_to_accuracy.py                      # digits, target 97%
    python bench/time_to_accuracy.py --data cifar10:ROOT --target 0.80 --epochs 30
    python bench/time_to_accuracy.py --data cifar10-jpg:500:200 --target 0.5 --seeds 1

`cifar10-jpg:TRAIN:TEST` is the real CIFAR-10 from ../shared/data/cifar10-jpg.tar.gz (extracted
once by bench/cifar10.py into ~/.cache/squeezelab) cut to TRAIN and TEST images a class. Its folder
has train/ + test/, so the validation accuracy that decides "reached" is on a seeded 20% held out
of train/: the test images play no part (bench/cifar10.py scores a final model on them).

Training seeds differ between runs (`--seeds`, default 3) because the two sides' trajectories
differ anyway (dropout draws, summation order), so one seed's epoch-to-target is luck. The last
line is `speedup=<median plain seconds / median squeezelab seconds to target>` (`speedup=nan` when
any run misses the target within the budget); the line before it compares seconds per epoch.
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing
import statistics
import tempfile
from pathlib import Path

from squeezelab.data.config import DataConfig
from squeezelab.train.config import TrainConfig
from squeezelab.runtime import SpeedConfig
from squeezelab.train.run import train


def time_to_target(metrics_csv: Path, target: float) -> tuple[float, int | None, float]:
    """(seconds to the first epoch with val_acc >= target or nan, that epoch, final val_acc)."""
    seconds, hit, final = 0.0, None, float("nan")
    with open(metrics_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            seconds += float(row["seconds"])
            final = float(row["val_acc"])
            if hit is None and final >= target:
                hit = (seconds, int(row["epoch"]))
    return (hit[0], hit[1], final) if hit else (math.nan, None, final)


def resolve_data(spec: str) -> str:
    """A data spec for `train`: `cifar10-jpg:TRAIN:TEST` becomes a folder of that CIFAR-10 subset."""
    if not spec.startswith("cifar10-jpg:"):
        return spec
    import importlib.util

    train_per_class, test_per_class = (int(n) for n in spec.split(":")[1:3])
    module_spec = importlib.util.spec_from_file_location("bench_cifar10", Path(__file__).with_name("cifar10.py"))
    cifar10 = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(cifar10)
    root = cifar10.extract(cifar10.ARCHIVE, cifar10.CACHE)
    return str(cifar10.subset(root, cifar10.CACHE, train_per_class, test_per_class))


def _run(label: str, speed: dict, data: dict, recipe: dict, out: str, queue) -> None:
    result = train(data_config=DataConfig.from_dict(data), train_config=TrainConfig.from_dict(recipe),
                   speed=SpeedConfig.from_dict(speed), out=out)
    queue.put((label, result))


def run_in_own_process(label: str, speed: SpeedConfig, data: DataConfig, recipe: TrainConfig, out: Path) -> dict:
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    proc = spawn.Process(target=_run, args=(label, speed.to_dict(), data.to_dict(), recipe.to_dict(), str(out), queue))
    proc.start()
    try:
        _, result = queue.get()
    finally:
        proc.join()
    if proc.exitcode != 0:
        raise SystemExit(f"the {label} run failed (exit code {proc.exitcode})")
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--data", default="digits", help="a data spec as for `squeezelab train --data`")
    parser.add_argument("--target", type=float, default=0.97, help="validation accuracy to reach (fraction)")
    parser.add_argument("--epochs", type=int, default=None, help="budget (default: the recipe's epochs)")
    parser.add_argument("--image-size", type=int, default=None, help="as `squeezelab train --image-size`")
    parser.add_argument("--seeds", type=int, default=3,
                        help="training seeds per side (default 3); sides alternate, medians are reported")
    args = parser.parse_args(argv)
    data = DataConfig(resolve_data(args.data), image_size=args.image_size)  # 32x32 JPEGs train at 32 by default
    recipe = TrainConfig() if args.epochs is None else TrainConfig(epochs=args.epochs)
    sides = {"plain": SpeedConfig.plain(), "squeezelab": SpeedConfig()}
    rows = {label: [] for label in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            order = list(sides) if seed % 2 == 0 else list(reversed(sides))
            for label in order:
                out = Path(tmp) / f"{label}-{seed}"
                result = run_in_own_process(label, sides[label], data, recipe.replace(seed=seed), out)
                seconds, epoch, final = time_to_target(out / "metrics.csv", args.target)
                rows[label].append((seed, seconds, epoch, final, result["best_val_acc"], result["seconds"]))
    print(f"data {args.data}, target {args.target:.0%}, budget {recipe.epochs} epochs of the default recipe, "
          f"seeds 0-{args.seeds - 1}, each run in its own process")
    print(f"{'run':12s} {'seed':>4s} {'s to target':>12s} {'epoch':>6s} {'final val':>10s} {'best val':>9s} {'total s':>8s} {'s/epoch':>8s}")
    for label, runs in rows.items():
        for seed, seconds, epoch, final, best, total in runs:
            print(f"{label:12s} {seed:4d} {seconds:12.1f} {str(epoch):>6s} {final:10.4f} {best:9.4f} {total:8.1f}"
                  f" {total / recipe.epochs:8.2f}")

    def median(label: str, column: int) -> float:
        values = [run[column] for run in rows[label]]
        return statistics.median(values) if not any(math.isnan(v) for v in values) else math.nan

    print(f"median s/epoch: plain {median('plain', 5) / recipe.epochs:.2f}, squeezelab "
          f"{median('squeezelab', 5) / recipe.epochs:.2f} (epoch_speedup={median('plain', 5) / median('squeezelab', 5):.2f})")
    print(f"speedup={median('plain', 1) / median('squeezelab', 1):.2f}")


if __name__ == "__main__":
    main()
