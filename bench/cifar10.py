"""Train on the full CIFAR-10 for a fixed budget; print the final model's test accuracy and the minutes.

The data is ../shared/data/cifar10-jpg.tar.gz (train/<class>/ 5,000 each, test/<class>/ 1,000
each; re-encoded JPEGs, so figures can differ by a few tenths of a point from the official
pickles). It is extracted once into a cache folder, never into the repository, and decoded once
into a uint8 tensor. The run trains on all 50,000 training images with `squeezelab train`'s
recipe for small images (the model, batch, schedule and augmentation it picks for 32 px; see
docs/training.md) for the recipe's epochs, then scores the *final* model once on the 10,000 test
images, without and with flip test-time augmentation. Nothing looks at the test images before
that: no epoch is chosen, no run stopped early on them.

    python bench/cifar10.py --json --seed 0     # the full run: last line is one JSON object
    python bench/cifar10.py --quick             # a smoke run: 1 epoch on 2,000 + 500 images
    python bench/cifar10.py --json --seed 1 --save cifar10.pt   # and keep the final model
    python bench/cifar10.py --prepare 1000      # print a folder: 1,000 train images a class, all test
    python bench/cifar10.py --holdout 2000 --epochs 6 --cutout 8   # choose a recipe: score on held-out
                                                # training images (the last 500 a class), never on test/
    python bench/cifar10.py --json --model-option bypass=simple   # the same recipe, another variant
    python bench/cifar10.py --json --model tv/mobilenet_v3_small --model-option stem=cifar \
        --out docs/results/full-set                  # a peer, kept as a result file for docs/results.md

Keys of the JSON line: test_acc, test_acc_tta, minutes (wall, from the command's start to the last
figure, data preparation included), epochs, model, params, macs, seed, load (the 1/5/15-minute
load averages at the end), and more. With --holdout the run never opens test/: it trains on N
training images a class and scores on 500 others a class held out of the training set, so its
keys are val_acc and val_acc_tta; that is how recipes are compared (docs/training.md).
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402 - the clock starts before anything is imported
import dataclasses  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from _data import CACHE, cifar10_root  # noqa: E402 - bench/_data.py: the archive, extracted once


def link_folder(folder: Path, parts) -> Path:
    """`folder`/SPLIT/CLASS/ of links to the images `parts()` lists ({split: {class: [paths]}}),
    made once (the folders are listed only then): built in a temporary folder and renamed into
    place, so two runs started together neither trip over each other nor leave a half-made folder
    behind."""
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)  # a folder without .complete is half-made
    folder.parent.mkdir(parents=True, exist_ok=True)
    made = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    for split, classes in parts().items():
        for label, images in classes.items():
            (made / split / label).mkdir(parents=True)
            for image in images:
                (made / split / label / image.name).symlink_to(image)
    (made / ".complete").write_text("ok")
    try:
        os.replace(made, folder)
    except OSError:  # another run renamed its own into place first
        shutil.rmtree(made)
    return folder


def _classes(split: Path) -> dict:
    return {label.name: sorted(label.iterdir()) for label in sorted(split.iterdir())}


def subset(root: Path, cache: Path, train_per_class: int, test_per_class: int) -> Path:
    """A smaller copy made of symlinks, for --quick and --prepare."""
    return link_folder(cache / f"cifar10-jpg-{train_per_class}-{test_per_class}", lambda: {
        split: {label: images[:count] for label, images in _classes(root / split).items()}
        for split, count in (("train", train_per_class), ("test", test_per_class))})


HELD_OUT_PER_CLASS = 500


def holdout(root: Path, cache: Path, train_per_class: int) -> Path:
    """A folder of links for choosing a recipe without the test split: train/ holds the first
    `train_per_class` training images of each class, test/ the last HELD_OUT_PER_CLASS (500) of
    them, never trained on; the official test images are not in it."""
    classes = _classes(root / "train")
    keep = min(len(images) for images in classes.values()) - HELD_OUT_PER_CLASS
    if not 1 <= train_per_class <= keep:
        raise SystemExit(f"--holdout takes 1 to {keep} training images a class (the last {HELD_OUT_PER_CLASS} "
                         f"are held out), got {train_per_class}")
    return link_folder(cache / f"{root.name}-holdout-{train_per_class}", lambda: {
        "train": {label: images[:train_per_class] for label, images in classes.items()},
        "test": {label: images[-HELD_OUT_PER_CLASS:] for label, images in classes.items()}})


def open_train_and_test(root: Path):
    """One Dataset: every image of train/ to train on (normalised by their own statistics), and
    test/ as its held-out split, which only the final scoring reads."""
    from squeezelab.data import DataConfig, open_dataset
    from squeezelab.data.config import ALL_IMAGES

    train = open_dataset(DataConfig(str(root / "train"), image_size=32, split=ALL_IMAGES))
    test = open_dataset(DataConfig(str(root / "test"), image_size=32, split=ALL_IMAGES))
    if list(train.classes) != list(test.classes):
        raise SystemExit(f"train/ and test/ of {root} hold different classes")
    return dataclasses.replace(train, val=test.val)


def train_final_model(data, plan, speed, log):
    """The model after the plan's epochs, trained by squeezelab's own Trainer (the path
    `squeezelab train` runs), with no validation between epochs."""
    from squeezelab import runtime
    from squeezelab.train.trainer import Trainer, start_model

    runtime.configure_process(speed)
    trainer = Trainer(start_model(plan, data), data, plan.train, speed=speed)
    log(f"training in {trainer.precision.amp} ({trainer.precision.reason})")

    def say(row, _val):
        log(f"epoch {row['epoch']:>2}/{plan.train.epochs}  train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.4f}  "
            f"{row['seconds']:.0f}s  ({(time.perf_counter() - START) / 60:.1f} min)")

    trainer.fit(validate=False, on_epoch=say)
    return trainer.model, trainer.precision


def point_key(model: str, options: dict, table: list | None, recipe: dict | None = None) -> str:
    """The result file's name: the model, its options, the recipe values changed and (a digest
    of) its layer table."""
    parts = [model.replace("/", "_"), *(f"{k}-{v}" for k, v in sorted({**options, **(recipe or {})}.items()))]
    if table:
        parts.append("table-" + hashlib.sha256(json.dumps(table).encode()).hexdigest()[:8])
    return "-".join(parts)


def revision() -> str | None:
    """The checkout's commit, read when the run starts (commits made while it trains are not its code)."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True).stdout.strip() or None
    except OSError:  # no git
        return None


def write_point(out: Path, key: str, figures: dict) -> None:
    """The run as a result file (`analysis.store`'s layout): `accuracy` is the final model's test
    top-1, so tables average it over seeds like every other result on docs/results.md."""
    from squeezelab.analysis.store import write_unit

    write_unit(out, key, figures["seed"], {**figures, "accuracy": figures["test_acc"], "accuracy_on": "test"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: the small-image recipe's")
    parser.add_argument("--model", default=None, help="registry name (default: the small-image recipe's)")
    parser.add_argument("--table", default=None, help="a SqueezeNet layer table as JSON rows, e.g. "
                        "'[[\"conv\",32,3,1,1],[\"fire\",16,32,32],[\"pool\"],...]' (models/squeezenet.py)")
    parser.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                        help="a model option, repeatable, e.g. --model-option bypass=simple")
    parser.add_argument("--translate", type=int, default=None, help="random shift in px (default: the recipe's)")
    parser.add_argument("--cutout", type=int, default=None, help="cutout square side in px (default: the recipe's)")
    parser.add_argument("--warmup-epochs", type=float, default=None, help="default: the recipe's")
    parser.add_argument("--whiten-stem", type=int, choices=(0, 1), default=None,
                        help="1: the first conv starts as the patch whitening of the training images "
                             "(default: the recipe's)")
    parser.add_argument("--holdout", type=int, metavar="N", default=None,
                        help="train on N training images a class and score on 500 others held out of the training "
                             "set (keys val_acc, val_acc_tta): how to compare recipes without the test split")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", choices=["auto", "off", "bf16"], default="auto",
                        help="auto: bf16 autocast on CUDA and on CPUs with AMX-BF16, fp32 elsewhere")
    parser.add_argument("--quick", action="store_true", help="1 epoch on 200 train + 50 test images a class")
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    parser.add_argument("--prepare", type=int, metavar="N", default=None,
                        help="only print the path of a folder with N train images a class and all 10,000 test "
                             "images (made once, of links into the cache), for the sweeps of docs/results.md")
    parser.add_argument("--save", metavar="PATH", default=None,
                        help="also write the final model as a squeezelab checkpoint (.pt) for export, eval, serve")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="also write the figures as DIR/points/MODEL-seedN.json, a result file "
                             "bench/results_tables.py builds docs/results.md's full-set table from")
    args = parser.parse_args()
    if args.quick and args.out:
        parser.error("--quick is a smoke run; its figures are not kept (drop --out)")
    if args.holdout is not None and (args.out or args.quick):
        parser.error("--holdout scores on held-out training images to choose a recipe; it takes neither --out "
                     "(results are scored on test/) nor --quick")

    if args.prepare is not None:
        print(subset(cifar10_root(Path(args.cache)), Path(args.cache), args.prepare, 1000))
        return
    started_at = revision()

    import torch

    from squeezelab import runtime
    from squeezelab.analysis.store import read_unit, unit_path
    from squeezelab.analysis.summary import summarize
    from squeezelab.utils.config import parse_options
    from squeezelab.evaluate import evaluate
    from squeezelab.train import recipe
    from squeezelab.train.config import TrainConfig

    log = (lambda line: print(line, flush=True))
    cache = Path(args.cache)
    root = cifar10_root(cache)
    epochs = 1 if args.quick else args.epochs
    if args.quick:
        root = subset(root, cache, 200, 50)
    if args.holdout is not None:
        root = holdout(root, cache, args.holdout)
    scored = "val" if args.holdout is not None else "test"
    data = open_train_and_test(root)
    log(f"data ready: {len(data.train)} train / {len(data.val)} {scored} images "
        f"({(time.perf_counter() - START):.0f} s)")
    changed = {k: v for k, v in (("translate", args.translate), ("cutout", args.cutout),
                                 ("warmup_epochs", args.warmup_epochs),
                                 ("whiten_stem", None if args.whiten_stem is None else bool(args.whiten_stem)))
               if v is not None}
    rows = json.loads(args.table) if args.table else None
    options = parse_options(args.model_option, "--model-option")
    asked = TrainConfig(epochs=epochs, seed=args.seed, device=args.device, stuck_steps=0, **changed)
    model_config = recipe.default_model_config(data, args.model, table=rows and [tuple(row) for row in rows], **options)
    plan = recipe.plan(recipe.DataFacts(data.image_size, data.num_classes, len(data.train)), asked, model_config)
    config = plan.train
    if data.augment is not None and plan.augment:
        data.augment = dataclasses.replace(data.augment, **plan.augment)
    key = point_key(model_config.name, options, rows, changed)
    if args.out and (done := read_unit(Path(args.out), key, args.seed)) is not None:  # a rerun trains nothing
        log(f"already measured: {unit_path(Path(args.out), key, args.seed)}")
        print(json.dumps(done) if args.json else done)
        return
    speed = runtime.SpeedConfig(amp=args.amp)
    log(f"{model_config.name}, recipe {config.recipe}: {config.epochs} epochs, batch {config.batch_size}, "
        f"lr {config.lr}, {config.schedule} after {config.warmup_epochs} warm-up epochs, label smoothing "
        f"{config.label_smoothing}, translate {config.translate} px + flips, cutout {config.cutout or 0}, "
        f"seed {config.seed}")
    model, precision = train_final_model(data, plan, speed, log)
    if args.save:
        from squeezelab.train.checkpoint import save_checkpoint

        save_checkpoint(args.save, {"model": model_config.to_dict(), "classes": list(data.classes),
                                    "preprocessing": data.preprocessing.to_dict(), "train": config.to_dict(),
                                    "state_dict": model.state_dict()})
    test = evaluate(model, data, split="val", speed=speed)
    test_tta = evaluate(model, data, split="val", speed=speed, flip=True)
    summary = summarize(model_config.build().eval(), input_size=data.image_size)
    figures = {
        f"{scored}_acc": round(test.top1, 4), f"{scored}_acc_tta": round(test_tta.top1, 4),
        "minutes": round((time.perf_counter() - START) / 60, 2), "epochs": config.epochs,
        "model": model_config.name, "model_options": options, "table": rows, "params": summary.total_params, "macs": summary.total_macs,
        "seed": args.seed, "load": [round(x, 2) for x in os.getloadavg()],
        "batch_size": config.batch_size, "lr": config.lr, "train_images": len(data.train),
        f"{scored}_images": len(data.val), "recipe_changes": changed, "threads": torch.get_num_threads(),
        "quick": args.quick,
        "device": str(next(model.parameters()).device), "amp": precision.amp, "amp_reason": precision.reason,
        "revision": started_at,
    }
    if not math.isfinite(test.loss):
        figures["note"] = "non-finite test loss"
    if args.out:
        write_point(Path(args.out), key, figures)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>14}: {value}")


if __name__ == "__main__":
    main()
