"""Each bad image or data set gives one clear line (or is skipped and counted)."""

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from squeezelab.data import DataConfig, open_dataset
from squeezelab.data import images as images_module
from squeezelab.data.images import BadImageError, open_image
from squeezelab.errors import SqueezelabError

from image_builders import make_folder, write_image


def _one_line(exc):
    assert "\n" not in str(exc)
    return str(exc)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "CMYK", "I;16", "LA", "1"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    suffix = ".tif" if mode == "CMYK" else ".png"
    path = write_image(tmp_path / f"x{suffix}", mode=mode if mode not in ("LA", "1") else "RGB")
    if mode in ("LA", "1"):
        Image.open(path).convert(mode).save(path)
    image = open_image(path)
    assert image.mode == "RGB" and image.size == (37, 29)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 128 * 257, dtype=np.uint16)).save(path)
    assert abs(np.asarray(open_image(path))[0, 0, 0] - 128) <= 1


def test_exif_rotation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    image = Image.new("RGB", (40, 20), "white")
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(path, exif=exif)
    assert open_image(path).size == (20, 40)


@pytest.mark.parametrize("content, words", [
    (b"", "empty"), (b"this is not an image", "not an image"),
])
def test_zero_byte_and_non_image(tmp_path, content, words):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(BadImageError, match=words) as info:
        open_image(path)
    assert str(path) in _one_line(info.value)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_image(tmp_path, suffix):
    good = write_image(tmp_path / f"good{suffix}", size=(64, 64))
    data = good.read_bytes()
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImageError, match="corrupt or truncated") as info:
        open_image(bad)
    _one_line(info.value)


def test_decompression_bomb_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(images_module, "MAX_IMAGE_PIXELS", 1000)
    path = write_image(tmp_path / "big.png", size=(50, 50))
    with pytest.raises(BadImageError, match="decompression bomb"):
        open_image(path)


def test_symlink_loop_is_a_bad_image(tmp_path):
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    with pytest.raises(BadImageError, match="symlink"):
        open_image(tmp_path / "a.png")


def test_folder_with_corrupt_image_names_it_and_skip_counts(tmp_path):
    root = make_folder(tmp_path / "d", per_class=4)
    bad = root / "dog" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(SqueezelabError, match="broken.jpg") as info:
        open_dataset(DataConfig(str(root), image_size=16))
    assert "--skip-bad-images" in _one_line(info.value)
    data = open_dataset(DataConfig(str(root), image_size=16, skip_bad_images=True))
    assert data.skipped == [str(bad)] and len(data.train) + len(data.val) == 12


def test_hidden_junk_and_directory_loops_are_ignored(tmp_path):
    root = make_folder(tmp_path / "d", per_class=3)
    (root / "cat" / ".DS_Store").write_bytes(b"\0\1junk")
    (root / "cat" / "Thumbs.db").write_bytes(b"junk")
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    os.symlink(root / "cat", root / "cat" / "loop")  # a directory link back to itself
    data = open_dataset(DataConfig(str(root), image_size=16))
    assert len(data.train) + len(data.val) == 9


@pytest.mark.parametrize("case", ["missing", "empty", "one_class", "empty_class_only", "file_not_list"])
def test_bad_folders(tmp_path, case):
    root = tmp_path / "d"
    if case == "empty":
        root.mkdir()
    elif case == "one_class":
        make_folder(root, classes=("cat",), per_class=3)
    elif case == "empty_class_only":
        (root / "cat").mkdir(parents=True)
        (root / "dog").mkdir()
    elif case == "file_not_list":
        root = tmp_path / "image.png"
        write_image(root)
    with pytest.raises(SqueezelabError) as info:
        open_dataset(DataConfig(str(root)))
    assert str(root.name) in _one_line(info.value) or "not found" in str(info.value)


def test_train_val_class_mismatch(tmp_path):
    make_folder(tmp_path / "d" / "train", classes=("cat", "dog"), per_class=2)
    make_folder(tmp_path / "d" / "val", classes=("cat", "owl"), per_class=2)
    with pytest.raises(SqueezelabError, match="only in train: \\['dog'\\]") as info:
        open_dataset(DataConfig(str(tmp_path / "d")))
    _one_line(info.value)


@pytest.mark.parametrize("text, words", [
    ("missing.png 0\n", "does not exist"),
    ("imgs/a.png\n", "expected 'path label'"),
    ("imgs/a.png 0\nimgs/a.png cat\n", "mix numbers and names"),
    ("imgs/a.png -1\nimgs/a.png 1\n", "negative"),
    ("# nothing\n", "no 'path label' lines"),
])
def test_bad_list_files(tmp_path, text, words):
    write_image(tmp_path / "imgs" / "a.png")
    (tmp_path / "list.txt").write_text(text)
    with pytest.raises(SqueezelabError, match=words) as info:
        open_dataset(DataConfig(str(tmp_path / "list.txt")))
    _one_line(info.value)


@pytest.mark.parametrize("case", ["missing_root", "missing_file", "not_pickle", "wrong_shape", "code_in_pickle"])
def test_bad_cifar(tmp_path, case):
    root = tmp_path / "c"
    if case != "missing_root":
        root.mkdir()
        batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
        if case == "not_pickle":
            batch = None
            (root / "data_batch_1").write_bytes(b"not a pickle")
        elif case == "wrong_shape":
            batch[b"data"] = np.zeros((2, 100), np.uint8)
        elif case == "code_in_pickle":
            batch = None
            (root / "data_batch_1").write_bytes(pickle.dumps(os.system))
        if batch is not None and case != "missing_file":
            (root / "data_batch_1").write_bytes(pickle.dumps(batch))
    with pytest.raises(SqueezelabError) as info:
        open_dataset(f"cifar10:{root}")
    assert str(root) in _one_line(info.value)
