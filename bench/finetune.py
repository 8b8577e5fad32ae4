"""Fine-tuning from the paper's released ImageNet SqueezeNet vs training from scratch, on a CIFAR-10
pair with a few hundred training images, and a table of the two.

The released model (../shared/data/squeezenet-dc/compressed_SqueezeNet.net) is converted with
`squeezelab convert`; the pair's first N training JPEGs per class (sorted names) form train/, the
next 50 per class val/ (the per-epoch check that picks best.pt), and the pair's 2,000 test images score
both runs' best.pt and final model (last.pt) with `squeezelab eval`: with 100 validation images the
epoch best.pt keeps is chosen on a few images' worth of noise, so the final model is reported too. Both runs get the same epochs and input size; `--weights`
alone chooses the rest of the fine-tuning run (model, Caffe input, recipe). CIFAR images are
32 px, upscaled: a stand-in for a small folder of photos. Everything is written under --work
(default: a temporary folder), never into the repository.

    python bench/finetune.py                          # airplane vs ship, 200 per class, 128 px, seed 0
    python bench/finetune.py --pair cat dog --seeds 0 1 2
    python bench/finetune.py --epochs 30 --lr 2.6e-4 --seeds 0 1 2     # --lr: the fine-tuning run's head rate
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import shutil
import tempfile
import time
from pathlib import Path

from _data import cifar10_root  # bench/_data.py: the archive, extracted once into a cache folder

SHARED = Path(os.environ.get("SQUEEZELAB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
NET = SHARED / "squeezenet-dc" / "compressed_SqueezeNet.net"
ARCHIVE = SHARED / "cifar10-jpg.tar.gz"
SQUEEZELAB = [sys.executable, "-m", "squeezelab"]


def squeezelab(*args) -> dict:
    done = subprocess.run([*SQUEEZELAB, *map(str, args), "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"squeezelab {' '.join(map(str, args))} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def make_pair(work: Path, pair: tuple[str, str], per_class: int, val_per_class: int) -> Path:
    """train/ (the first per_class training images of each class by name), val/ (the next
    val_per_class: the per-epoch check, never a test image) and test/ (all 1,000 test images of
    each), copied from the archive's folder (bench/_data.py extracts it once into the cache)."""
    root = work / f"{pair[0]}_{pair[1]}_{per_class}"
    if (root / ".complete").exists():
        return root
    cifar = cifar10_root(archive=ARCHIVE)
    slices = (("train", "train", 0, per_class), ("val", "train", per_class, per_class + val_per_class),
              ("test", "test", 0, None))
    for split, source, first, last in slices:
        for name in pair:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for file in sorted((cifar / source / name).iterdir())[first:last]:
                shutil.copyfile(file, folder / file.name)
    (root / ".complete").write_text("ok")
    return root


def run(work: Path, data: Path, name: str, seed: int, epochs: int, size: int, extra: list) -> dict:
    """Train on data/train (checked on data/val), then score best.pt and the final model on all of data/test."""
    train_view = work / f"view_{data.name}"  # train/ + val/ only: the test images stay unseen
    if not train_view.exists():
        train_view.mkdir()
        for split in ("train", "val"):
            (train_view / split).symlink_to(data / split)
    out = work / f"{name}_seed{seed}"
    start = time.perf_counter()
    result = squeezelab("train", "--data", train_view, "--out", out, "--epochs", epochs, "--image-size", size,
                        "--seed", seed, *extra)
    seconds = time.perf_counter() - start
    test = squeezelab("eval", result["checkpoint"], "--data", data / "test")
    final = squeezelab("eval", out / "last.pt", "--data", data / "test")
    return {"run": name, "seed": seed, "train_s": seconds, "test_acc": test["top1"], "test_acc_final": final["top1"],
            "test_images": test["count"], "model": result["model"]["name"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", nargs=2, default=["airplane", "ship"])
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=6, help="both runs (the fine-tuning recipe's default)")
    parser.add_argument("--image-size", type=int, default=128,
                        help="both runs; the released weights' own 227 px costs 3x the time on a CPU")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lr", type=float, default=None, help="the fine-tuning run's head learning rate "
                        "(default: the fine-tuning recipe's); the scratch run keeps its recipe")
    parser.add_argument("--runs", default="fine-tune,scratch", help="which runs, comma-separated")
    parser.add_argument("--work", default=None, help="folder for data, runs and the converted model")
    args = parser.parse_args()
    for needed in (NET, ARCHIVE):
        if not needed.is_file():
            raise SystemExit(f"{needed} not found: set SQUEEZELAB_SHARED_DATA to the shared data folder")
    work = Path(args.work or tempfile.mkdtemp(prefix="finetune-"))
    work.mkdir(parents=True, exist_ok=True)
    converted = work / "released.pt"
    if not converted.exists():
        squeezelab("convert", NET, "-o", converted)
    data = make_pair(work, tuple(args.pair), args.per_class, 50)
    rows = []
    extra = {"fine-tune": ["--weights", converted, *(["--lr", args.lr] if args.lr else [])], "scratch": []}
    for seed in args.seeds:
        for name in args.runs.split(","):
            rows.append(run(work, data, name, seed, args.epochs, args.image_size, extra[name]))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"{args.pair[0]} vs {args.pair[1]}: {args.per_class} training images per class, {args.epochs} epochs at "
          f"{args.image_size} px, {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"{'run':<10} {'seed':>4} {'model':<14} {'train s':>8} {'best.pt':>8} {'final':>8} {'test images':>11}")
    for row in rows:
        print(f"{row['run']:<10} {row['seed']:>4} {row['model']:<14} {row['train_s']:>8.0f} {row['test_acc']:>8.2%} "
              f"{row['test_acc_final']:>8.2%} {row['test_images']:>11}")


if __name__ == "__main__":
    main()
