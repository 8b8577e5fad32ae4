"""Fine-tuning on real photos: squeezelab's default (the shipped ImageNet weights and the fine-tuning
recipe) against training from scratch and against a reference recipe, in one run, per seed.

The data is a photo folder with train/ and val/ of class folders (../shared/data/flower-photos: 5
classes, 2,936 + 734 photos). Every run trains on train/ with `squeezelab train` as a user runs it
and is scored by its final model's top-1 on val/ (the trainer's last validation), with the seconds
its training took. Runs, per seed:
- default:   `squeezelab train --data FOLDER` and nothing else;
- scratch:   `--scratch`, with the default run's epochs and image size;
- reference: the weights by path (the released file converted by `squeezelab convert`) with the
             reference recipe's values given as flags (`--reference`, default: the earlier
             fine-tuning recipe: 227 px, 6 epochs, every layer training, the head at 8.7e-5 and
             the pretrained layers at 0.1x);
- ceiling (with --ceiling): the default recipe for --ceiling epochs, the longer run's accuracy.
With --curve the default recipe is run at several epoch counts and the accuracy-against-seconds
points are plotted (PNG). Everything is written under --work (default: a temporary folder).

    python bench/finetune.py --data ../shared/data/flower-photos --seeds 0 1
    python bench/finetune.py --data ../shared/data/flower-photos --seeds 0 --ceiling 12 --curve 1,2,3,4 --plot f.png
    python bench/finetune.py ... --json      # one JSON line per run: val_acc, train_seconds, start, seed, ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(os.environ.get("SQUEEZELAB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
NET = SHARED / "squeezenet-dc" / "compressed_SqueezeNet.net"
SQUEEZELAB = [sys.executable, "-m", "squeezelab"]
REFERENCE = "--image-size 227 --epochs 6 --frozen-stages 0 --lr 8.7e-5 --pretrained-lr-factor 0.1"


def squeezelab(*args) -> dict:
    done = subprocess.run([*SQUEEZELAB, *map(str, args), "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"squeezelab {' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def train(work: Path, data: Path, name: str, seed: int, flags: list) -> dict:
    """One `squeezelab train` run; its final model's val/ top-1 and its training seconds."""
    result = squeezelab("train", "--data", data, "--out", work / f"{name}-seed{seed}", "--seed", seed, *flags)
    history = json.loads((Path(result["out"]) / "result.json").read_text())
    config = json.loads((Path(result["out"]) / "config.json").read_text())
    return {"run": name, "seed": seed, "val_acc": result["final_val_acc"], "best_val_acc": result["best_val_acc"],
            "train_seconds": result["seconds"], "start": history["start"], "image_size": config["data"]["image_size"],
            "epochs": result["epochs"], "amp": result["amp"], "model": result["model"]["name"],
            "val_images": result["val_images"], "load": round(os.getloadavg()[0], 2)}


def plot_curve(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r["run"].split("@")[0] for r in rows):
        points = sorted((r["train_seconds"], 100 * r["val_acc"]) for r in rows if r["run"].split("@")[0] == name)
        ax.plot(*zip(*points), marker="o", label=name)
    ax.set_xlabel("training seconds")
    ax.set_ylabel("val/ top-1 of the final model (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED / "flower-photos"), help="a folder with train/ and val/")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--runs", default="default,scratch,reference", help="which runs, comma-separated")
    parser.add_argument("--reference", default=REFERENCE, help=f"the reference recipe's flags (default: {REFERENCE!r})")
    parser.add_argument("--ceiling", type=int, default=None, metavar="EPOCHS", help="also the default recipe this long")
    parser.add_argument("--curve", default=None, metavar="E1,E2,...", help="the default recipe at these epoch counts")
    parser.add_argument("--plot", default=None, help="write the accuracy-against-seconds points as this PNG")
    parser.add_argument("--work", default=None, help="folder for the runs and the converted model")
    parser.add_argument("--json", action="store_true", help="one JSON line per run on stdout")
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "train").is_dir() or not (data / "val").is_dir():
        raise SystemExit(f"{data} needs train/ and val/ class folders (../shared/data/flower-photos has them)")
    work = Path(args.work or tempfile.mkdtemp(prefix="finetune-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []

    def record(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), file=sys.stdout if args.json else sys.stderr, flush=True)

    for seed in args.seeds:
        default = None
        for name in args.runs.split(","):
            if name == "default":
                default = train(work, data, "default", seed, [])
                record(default)
            elif name == "scratch":
                same = ["--epochs", default["epochs"], "--image-size", default["image_size"]] if default else []
                record(train(work, data, "scratch", seed, ["--scratch", *same]))
            elif name == "reference":
                if not NET.is_file():
                    raise SystemExit(f"{NET} not found: set SQUEEZELAB_SHARED_DATA to the shared data folder")
                converted = work / "released.pt"
                if not converted.exists():
                    squeezelab("convert", NET, "-o", converted)
                record(train(work, data, "reference", seed, ["--weights", converted, *args.reference.split()]))
        if args.ceiling:
            record(train(work, data, f"default@{args.ceiling}", seed, ["--epochs", args.ceiling]))
        for epochs in (args.curve.split(",") if args.curve else []):
            record(train(work, data, f"default@{epochs}", seed, ["--epochs", epochs]))
    if args.plot:
        plot_curve([r for r in rows if r["run"].startswith("default")], Path(args.plot))
    if args.json:
        return
    print(f"{data}: final model's top-1 on val/, {os.cpu_count()} cores "
          f"(load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"{'run':<12} {'seed':>4} {'start':<14} {'px':>4} {'epochs':>6} {'amp':>5} {'train s':>8} {'val top-1':>9}")
    for r in rows:
        print(f"{r['run']:<12} {r['seed']:>4} {Path(r['start']).name:<14} {r['image_size']:>4} {r['epochs']:>6} "
              f"{r['amp']:>5} {r['train_seconds']:>8.0f} {r['val_acc']:>9.2%}")
    by_seed = {(r["run"], r["seed"]): r for r in rows}
    for seed in args.seeds:
        d, ref = by_seed.get(("default", seed)), by_seed.get(("reference", seed))
        if d and ref:
            print(f"seed {seed}: default {d['train_seconds'] / ref['train_seconds']:.2f}x the reference's seconds, "
                  f"{100 * (d['val_acc'] - ref['val_acc']):+.1f} points")


if __name__ == "__main__":
    main()
