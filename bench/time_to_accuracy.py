"""Time to accuracy: the default training recipe with squeezelab's speed switches on vs off.

Both runs use the same recipe, data, split and seed (`squeezelab.train.run.train` with the
default TrainConfig); only the SpeedConfig differs: `SpeedConfig()` (channels_last, fused
conv+ReLU) against `SpeedConfig.plain()` (eager fp32 NCHW, the plain reference loop). Each gets
the same budget of epochs; the wall time to the first epoch at or above the target validation
accuracy is read from the run's metrics.csv (per-epoch seconds, training + validation).

    python bench/time_to_accuracy.py                      # digits, target 97%
    python bench/time_to_accuracy.py --data cifar10:ROOT --target 0.80 --epochs 30

The last line is `speedup=<plain seconds / squeezelab seconds to target>` (or `speedup=nan`
when either run misses the target within the budget).
"""

from __future__ import annotations

import argparse
import csv
import math
import tempfile
from pathlib import Path

from squeezelab.data.config import DataConfig
from squeezelab.train.config import TrainConfig
from squeezelab.train.performance import SpeedConfig
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--data", default="digits", help="a data spec as for `squeezelab train --data`")
    parser.add_argument("--target", type=float, default=0.97, help="validation accuracy to reach (fraction)")
    parser.add_argument("--epochs", type=int, default=None, help="budget (default: the recipe's epochs)")
    args = parser.parse_args(argv)
    recipe = TrainConfig() if args.epochs is None else TrainConfig(epochs=args.epochs)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, speed in (("plain", SpeedConfig.plain()), ("squeezelab", SpeedConfig())):
            out = Path(tmp) / label
            result = train(data_config=DataConfig(args.data), train_config=recipe, speed=speed, out=str(out))
            seconds, epoch, final = time_to_target(out / "metrics.csv", args.target)
            rows[label] = (seconds, epoch, final, result["best_val_acc"], result["seconds"])
    print(f"data {args.data}, target {args.target:.0%}, budget {recipe.epochs} epochs of the default recipe")
    print(f"{'run':12s} {'s to target':>12s} {'epoch':>6s} {'final val':>10s} {'best val':>9s} {'total s':>8s}")
    for label, (seconds, epoch, final, best, total) in rows.items():
        print(f"{label:12s} {seconds:12.1f} {str(epoch):>6s} {final:10.4f} {best:9.4f} {total:8.1f}")
    print(f"speedup={rows['plain'][0] / rows['squeezelab'][0]:.2f}")


if __name__ == "__main__":
    main()
