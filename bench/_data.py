"""The shared CIFAR-10 JPEG archive, extracted once into a cache folder for every benchmark.

../shared/data/cifar10-jpg.tar.gz (beside the repository) holds cifar10-jpg/train/<class>/ (5,000
JPEGs a class) and test/<class>/ (1,000 a class). Benchmarks read it as a folder; extracting the
gzip takes a while, so it is done once, into `$SQUEEZELAB_CACHE/cifar10-jpg` (default
~/.cache/squeezelab), never into the repository.

The folder appears only whole: the archive is extracted into a temporary folder beside it, a
`.complete` marker is written into that folder, and the folder is renamed into place. A folder
without the marker (extracted by hand, or by an older version of these scripts) is checked: used,
and marked, when it holds every image; moved aside and extracted again when it does not. Two runs
started together each extract and the second rename loses to the first, whose folder is used.

    from _data import cifar10_root     # bench/ scripts: python puts the script's folder on sys.path
    root = cifar10_root()              # root / "train" / "cat" / "0001.jpg"
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

ARCHIVE = Path(os.environ.get("SQUEEZELAB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
               ) / "cifar10-jpg.tar.gz"
CACHE = Path(os.environ.get("SQUEEZELAB_CACHE", Path.home() / ".cache" / "squeezelab"))
FOLDER = "cifar10-jpg"
MARKER = ".complete"
CIFAR10_IMAGES = {"train": 5000, "test": 1000}  # per class, 10 classes


def cifar10_root(cache: Path = CACHE, archive: Path = ARCHIVE, expected: dict[str, int] = CIFAR10_IMAGES,
                 classes: int = 10) -> Path:
    """The extracted folder (train/ and test/ of class folders), made once; see the module doc."""
    cache = Path(cache)
    root = cache / FOLDER
    if (root / MARKER).exists():
        return root
    if root.exists():
        if is_complete(root, expected, classes):
            (root / MARKER).write_text("ok")
            return root
        _move_aside(root)
    if not Path(archive).is_file():
        raise SystemExit(f"{archive} not found: this benchmark needs the shared CIFAR-10 JPEG archive "
                         "(set SQUEEZELAB_SHARED_DATA to the folder that holds it)")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".{FOLDER}.") as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        found = next((p.parent for p in Path(tmp).rglob("train") if p.is_dir()), None)
        if found is None:
            raise SystemExit(f"{archive} holds no train/ folder; is it the CIFAR-10 JPEG archive?")
        (found / MARKER).write_text("ok")
        try:
            os.replace(found, root)
        except OSError:  # another run renamed its copy into place first
            if not (root / MARKER).exists():
                raise
    return root


def is_complete(root: Path, expected: dict[str, int] = CIFAR10_IMAGES, classes: int = 10) -> bool:
    """Whether `root` holds `classes` class folders with the expected image count in each split."""
    for split, per_class in expected.items():
        folders = [p for p in (root / split).iterdir() if p.is_dir()] if (root / split).is_dir() else []
        if len(folders) != classes or any(sum(1 for f in d.iterdir() if f.is_file()) != per_class for d in folders):
            return False
    return True


def _move_aside(root: Path) -> None:
    """Rename an incomplete folder out of the way (one rename, so a reader never sees it half
    deleted), then delete it."""
    aside = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{FOLDER}.stale."))
    try:
        os.replace(root, aside / FOLDER)
    except FileNotFoundError:  # another run moved it first
        pass
    shutil.rmtree(aside, ignore_errors=True)
