"""Train SqueezeNet on the real CIFAR-10 (32x32 JPEGs) and print test accuracy and wall time.

The data is ../shared/data/cifar10-jpg.tar.gz (train/<class>/ 5,000 each, test/<class>/ 1,000
each; re-encoded JPEGs, so figures can differ by a few tenths of a point from the official
pickles). It is extracted once into a cache folder, never into the repository, and opened as an
image folder: 32 px images are decoded once into a uint8 tensor and augmented in batches
(random translation + flip). The model is SqueezeNet 1.1 with the small stem (3x3 stride 1, no
first pool), batch norm and no final ReLU; the recipe is the trainer's default (SGD Nesterov,
warm-up + cosine, label smoothing 0.1).

    python bench/cifar10.py --quick                 # a smoke run: 1 epoch on 2,000 + 500 images
    python bench/cifar10.py --epochs 30 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path

ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpg.tar.gz"
CACHE = Path(os.environ.get("SQUEEZELAB_CACHE", Path.home() / ".cache" / "squeezelab"))


def extract(archive: Path, cache: Path) -> Path:
    root = cache / "cifar10-jpg"
    if (root / ".complete").exists():
        return root
    if not archive.is_file():
        raise SystemExit(f"{archive} not found: this benchmark needs the shared CIFAR-10 JPEG archive")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp, tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
        found = next(Path(tmp).rglob("train")).parent
        os.replace(found, root)
    (root / ".complete").write_text("ok")
    return root


def subset(root: Path, cache: Path, train_per_class: int, test_per_class: int) -> Path:
    """A smaller copy made of symlinks, for --quick."""
    small = cache / f"cifar10-jpg-{train_per_class}-{test_per_class}"
    if (small / ".complete").exists():
        return small
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for folder in sorted((root / split).iterdir()):
            target = small / split / folder.name
            target.mkdir(parents=True, exist_ok=True)
            for image in sorted(folder.iterdir())[:count]:
                if not (target / image.name).exists():
                    (target / image.name).symlink_to(image)
    (small / ".complete").write_text("ok")
    return small


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="1 epoch on 200 train + 50 test images a class")
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    args = parser.parse_args()

    from squeezelab.data import DataConfig
    from squeezelab.models.config import ModelConfig
    from squeezelab.train.config import TrainConfig
    from squeezelab.train.run import train

    cache = Path(args.cache)
    t0 = time.perf_counter()
    root = extract(ARCHIVE, cache)
    epochs = args.epochs
    if args.quick:
        root, epochs = subset(root, cache, 200, 50), 1
    prepare_seconds = time.perf_counter() - t0
    model = ModelConfig("squeezenet1_1", {"num_classes": 10, "stem": "small", "batch_norm": True, "final_relu": False})
    config = TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr, device=args.device, stuck_steps=0)
    out = args.out or tempfile.mkdtemp(prefix="sqz-cifar10-")
    result = train(model, DataConfig(str(root), image_size=32), config, out=out, log=print)
    figures = {"test_acc": result["best_val_acc"], "final_test_acc": result["final_val_acc"],
               "train_seconds": result["seconds"], "extract_seconds": round(prepare_seconds, 1),
               "epochs": result["epochs"], "device": result["device"], "train_images": result["train_images"],
               "test_images": result["val_images"], "quick": args.quick, "out": out}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
