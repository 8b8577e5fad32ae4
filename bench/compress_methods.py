"""`--method kmeans` against `--method gptq` at the same targets, in one run: size and what is kept.

Part `imagenet` (no labels): the paper's released ImageNet SqueezeNet v1.0 (converted from
../shared/data/squeezenet-dc/compressed_SqueezeNet.net) compressed with `compress --calib-data`
on ../shared/data/imagenet-photos to a whole .sqz of 450,000 and 400,000 bytes; the figure is
top-1 agreement with the uncompressed model on the held-out photos (never seen by any choice).

Part `trained` (with the training data): a checkpoint written by `squeezelab train` (default: the
default digits model, trained here with `--seed`) compressed with its own data at the settings
that give about 10x and 20x (and the default, about 33x); the figure is validation top-1 of the
decoded .sqz against the checkpoint's.

Each result is one JSON line on stdout (progress goes to stderr):

    python bench/compress_methods.py imagenet                       # 4 compressions, about an hour on 2 cores
    python bench/compress_methods.py trained --seeds 0 1            # trains 2 digits models, 6 settings x 2 methods
    python bench/compress_methods.py trained --checkpoint run/best.pt --settings 10x
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("SQUEEZELAB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
NET = SHARED / "squeezenet-dc" / "compressed_SqueezeNet.net"
PHOTOS = SHARED / "imagenet-photos"
METHODS = ("kmeans", "gptq")
TARGETS = (450_000, 400_000)
TRAINED_SETTINGS = {  # label: CompressConfig options (the ratio each gives is measured, not assumed)
    "10x": {"sparsity_3x3": 0.67, "bits": 5},
    "20x": {"sparsity_3x3": 0.8, "bits": 4},
    "default": {},
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(row: dict) -> None:
    row["load"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(row), flush=True)


def imagenet(work: Path, targets: tuple[int, ...], calib_images: int) -> None:
    from squeezelab.compress.config import CalibConfig
    from squeezelab.compress.run import compress_with_calibration

    converted = work / "squeezenet1_0.pt"
    if not converted.exists():
        from squeezelab.cli import main

        if main(["convert", str(NET), "-o", str(converted)]) != 0:
            raise SystemExit(f"could not convert {NET}")
    for target in targets:
        for method in METHODS:
            config = CalibConfig(target_bytes=target, method=method, calibration_images=calib_images)
            started = time.perf_counter()
            report = compress_with_calibration(converted, work / f"{method}-{target}.sqz", PHOTOS, config, log=log)
            emit({"part": "imagenet", "method": method, "target_bytes": target,
                  "compressed_bytes": report.compressed_bytes, "top1_agreement": round(report.top1_agreement, 4),
                  "held_out_images": report.held_out_images, "calibration_images": report.calibration_images,
                  "seconds": round(time.perf_counter() - started, 1)})


def trained(work: Path, checkpoints: list[Path], settings: list[str]) -> None:
    from squeezelab.compress.config import CompressConfig
    from squeezelab.compress.run import compress_checkpoint

    for checkpoint in checkpoints:
        for label in settings:
            for method in METHODS:
                config = CompressConfig(**TRAINED_SETTINGS[label], method=method)
                started = time.perf_counter()
                report = compress_checkpoint(checkpoint, work / f"{label}-{method}.sqz", config, log=log)
                emit({"part": "trained", "checkpoint": str(checkpoint), "setting": label, "method": method,
                      "compressed_bytes": report.compressed_bytes, "ratio": round(report.ratio, 2),
                      "acc_before": report.acc_before, "acc_after": report.acc_after,
                      "points_lost": round(100 * (report.acc_before - report.acc_after), 2),
                      "seconds": round(time.perf_counter() - started, 1)})


def train_digits(work: Path, seed: int) -> Path:
    """The default `./run` model (`squeezelab train` with its defaults) for `seed`."""
    from squeezelab.cli import main

    out = work / f"digits-seed{seed}"
    if not (out / "best.pt").exists() and main(["train", "--out", str(out), "--seed", str(seed)]) != 0:
        raise SystemExit(f"training seed {seed} failed")
    return out / "best.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["imagenet", "trained"])
    parser.add_argument("--targets", type=int, nargs="+", default=list(TARGETS), help="imagenet: whole-file bytes")
    parser.add_argument("--calib-images", type=int, default=128)
    parser.add_argument("--checkpoint", type=Path, nargs="*", default=None, help="trained: checkpoints (default: train digits)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="trained: digits models to train")
    parser.add_argument("--settings", nargs="+", choices=list(TRAINED_SETTINGS), default=list(TRAINED_SETTINGS))
    parser.add_argument("--work", type=Path, default=None, help="where files go (default: a temporary folder)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="compress-methods-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.part == "imagenet":
        for needed in (NET, PHOTOS):
            if not needed.exists():
                raise SystemExit(f"{needed} not found: set SQUEEZELAB_SHARED_DATA to the shared data folder")
        imagenet(work, tuple(args.targets), args.calib_images)
    else:
        checkpoints = args.checkpoint or [train_digits(work, seed) for seed in args.seeds]
        trained(work, checkpoints, args.settings)


if __name__ == "__main__":
    main()
