"""bench/_data.py: the CIFAR-10 archive extracted once, atomically, whatever the cache folder holds."""

from __future__ import annotations

import tarfile

import pytest
from helpers import load_bench

EXPECTED = {"train": 3, "test": 1}  # a tiny archive: 2 classes, 3 train and 1 test image each


def _archive(tmp_path):
    source = tmp_path / "source" / "cifar10-jpg"
    for split, count in EXPECTED.items():
        for label in ("cat", "dog"):
            (source / split / label).mkdir(parents=True)
            for i in range(count):
                (source / split / label / f"{i}.jpg").write_bytes(b"jpeg")
    archive = tmp_path / "cifar10-jpg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="cifar10-jpg")
    return archive


def _root(data, cache, archive):
    return data.cifar10_root(cache, archive, expected=EXPECTED, classes=2)


def test_extracts_once_with_a_marker_and_reuses_the_folder(tmp_path):
    data = load_bench("_data")
    archive, cache = _archive(tmp_path), tmp_path / "cache"
    root = _root(data, cache, archive)
    assert (root / data.MARKER).exists() and len(list((root / "train" / "cat").iterdir())) == 3
    archive.unlink()  # a second call must not need the archive
    assert _root(data, cache, archive) == root
    assert [p.name for p in cache.iterdir()] == [data.FOLDER]  # no temporary folder left behind


def test_a_complete_folder_without_marker_is_used_and_marked(tmp_path):
    data = load_bench("_data")
    archive, cache = _archive(tmp_path), tmp_path / "cache"
    with tarfile.open(archive) as tar:  # extracted by hand
        tar.extractall(cache, filter="data")
    archive.unlink()
    root = _root(data, cache, archive)
    assert (root / data.MARKER).exists() and (root / "test" / "dog" / "0.jpg").exists()


def test_an_incomplete_folder_without_marker_is_replaced(tmp_path):
    data = load_bench("_data")
    archive, cache = _archive(tmp_path), tmp_path / "cache"
    (cache / data.FOLDER / "train" / "cat").mkdir(parents=True)
    (cache / data.FOLDER / "train" / "cat" / "half.jpg").write_bytes(b"")
    root = _root(data, cache, archive)
    assert (root / data.MARKER).exists() and not (root / "train" / "cat" / "half.jpg").exists()
    assert data.is_complete(root, EXPECTED, classes=2)
    assert [p.name for p in cache.iterdir()] == [data.FOLDER]


def test_a_missing_archive_is_one_line_not_a_traceback(tmp_path):
    data = load_bench("_data")
    with pytest.raises(SystemExit, match="not found"):
        _root(data, tmp_path / "cache", tmp_path / "absent.tar.gz")
