import pickle

import numpy as np
import pytest
import torch

from squeezelab.data import DataConfig, open_dataset
from squeezelab.data.split import stratified_split
from squeezelab.data.tensor_split import Augment
from squeezelab.errors import SqueezelabError

from image_builders import make_folder, write_image


def test_digits_split_is_stratified_and_recorded():
    data = open_dataset(DataConfig("digits", seed=3))
    assert data.num_classes == 10 and len(data.train) + len(data.val) == 1797
    assert data.image_size == 16
    val_counts = torch.bincount(data.val.labels, minlength=10)
    assert val_counts.min() >= 30  # every class keeps its ~20%
    again = open_dataset(DataConfig.from_dict(data.config.to_dict()))
    assert torch.equal(again.val.labels, data.val.labels) and torch.equal(again.val.images, data.val.images)
    other = open_dataset(DataConfig("digits", seed=4))
    assert other.config.split != data.config.split


def test_batches_are_normalised_seeded_and_augmented():
    data = open_dataset("digits")
    x, y = next(data.batches("train", 32, epoch=1))
    assert x.dtype == torch.float32 and x.shape == (32, 3, 16, 16) and y.dtype == torch.int64
    x2, y2 = next(data.batches("train", 32, epoch=1))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = next(data.batches("train", 32, epoch=2))
    assert not torch.equal(x, x3)
    ev, _ = next(data.batches("val", 1000))
    assert len(ev) == len(data.val) and abs(float(ev.mean())) < 0.3


def test_augment_translates_and_flips():
    images = torch.zeros(8, 3, 8, 8, dtype=torch.uint8)
    images[:, :, 3:5, 3:5] = 255
    out = Augment(pad=2, flip=True)(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert (out.sum(dim=(1, 2, 3)) <= images.sum(dim=(1, 2, 3))).all()
    assert not all(torch.equal(out[i], images[i]) for i in range(8))


def test_cutout_greys_one_square_per_image():
    images = torch.zeros(64, 3, 16, 16, dtype=torch.uint8)
    out = Augment(pad=0, cutout=4)(images, torch.Generator().manual_seed(0))
    grey = (out[:, 0] == 128).sum(dim=(1, 2))
    assert (grey >= 4).all() and (grey <= 16).all()  # a 4x4 square, clipped where it crosses the border
    assert (grey == 16).sum() > 16  # most squares whole
    assert torch.equal(out[:, 0], out[:, 2])  # the same square in every channel


def test_stratified_split_keeps_each_class():
    train, val = stratified_split([0] * 10 + [1] * 5, 0.2, seed=0)
    assert sorted(train + val) == list(range(15))
    assert sum(1 for i in val if i < 10) == 2 and sum(1 for i in val if i >= 10) == 1


def test_synthetic_options_and_bad_option():
    data = open_dataset("synthetic:n=40,classes=4,size=12")
    assert data.num_classes == 4 and data.image_size == 12
    with pytest.raises(SqueezelabError, match="synthetic"):
        open_dataset("synthetic:foo=1")


def test_folder_of_odd_images_small_goes_to_tensor(image_folder):
    data = open_dataset(DataConfig(str(image_folder), image_size=24))
    assert data.classes == ["cat", "dog", "owl"]
    assert len(data.train) + len(data.val) == 18
    x, y = next(data.batches("train", 4))
    assert x.shape == (4, 3, 24, 24)
    assert all(isinstance(p, str) for p in data.config.split["val"])
    again = open_dataset(DataConfig.from_dict(data.config.to_dict()))
    assert torch.equal(again.val.labels, data.val.labels)


def test_folder_of_photos_streams_through_workers(image_folder):
    data = open_dataset(DataConfig(str(image_folder), image_size=72))
    x, y = next(data.batches("train", 5, workers=0))
    assert x.shape == (5, 3, 72, 72) and x.dtype == torch.float32
    ev = list(data.batches("val", 100, workers=1))
    assert sum(len(b[1]) for b in ev) == len(data.val)


def test_folder_default_size_is_the_images_own_when_small_else_photo_size(tmp_path):
    small = make_folder(tmp_path / "small", per_class=4, size=(32, 32))  # sides 32..38
    data = open_dataset(DataConfig(str(small)))
    assert data.image_size == 38 and data.augment is not None  # decoded once into a tensor
    assert next(data.batches("train", 2))[0].shape == (2, 3, 38, 38)
    tiny = make_folder(tmp_path / "tiny", per_class=2, size=(6, 5))
    assert open_dataset(DataConfig(str(tiny))).image_size == 16
    photos = make_folder(tmp_path / "photos", per_class=2, size=(90, 70))
    data = open_dataset(DataConfig(str(photos)))
    assert data.image_size == 128 and data.augment is None  # streamed through workers


def test_folder_with_train_and_val(tmp_path):
    make_folder(tmp_path / "d" / "train", per_class=3)
    make_folder(tmp_path / "d" / "val", per_class=2)
    data = open_dataset(DataConfig(str(tmp_path / "d"), image_size=16))
    assert len(data.train) == 9 and len(data.val) == 6 and data.config.split is None


def test_list_file_with_spaces_and_names(tmp_path):
    lines = []
    for i in range(8):
        p = write_image(tmp_path / "imgs" / f"a b {i}.png", seed=i)
        lines.append(f"imgs/{p.name} {'bird' if i % 2 else 'fish'}")
    (tmp_path / "list.txt").write_text("# comment\n\n" + "\n".join(lines) + "\n")
    data = open_dataset(DataConfig(str(tmp_path / "list.txt"), image_size=16, val_fraction=0.25))
    assert data.classes == ["bird", "fish"] and len(data.train) + len(data.val) == 8


def _write_cifar(root, n=20, classes=10):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, classes, n))}
        (root / name).write_bytes(pickle.dumps(batch))
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(classes)]}))


def test_cifar10_pickles(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    data = open_dataset(f"cifar10:{tmp_path}")
    assert data.num_classes == 10 and len(data.train) == 100 and len(data.val) == 20
    assert next(data.batches("train", 8))[0].shape == (8, 3, 32, 32)


def test_folder_with_train_and_test_holds_validation_out_of_train(tmp_path):
    make_folder(tmp_path / "d" / "train", per_class=5)
    make_folder(tmp_path / "d" / "test", per_class=2)
    data = open_dataset(DataConfig(str(tmp_path / "d"), val_fraction=0.2))
    assert len(data.train) == 12 and len(data.val) == 3  # one of each class's 5 training images
    assert all(path.startswith("train/") for path in data.config.split["val"])
    reopened = open_dataset(data.config)  # the recorded split replays
    assert reopened.config.split == data.config.split and len(reopened.val) == 3


def test_calibration_batches_drawn_plain_in_random_order_cover_every_class(tmp_path):
    """A folder lists one class after another: calibration that reads only the first batches in
    file order saw the first classes alone (batch-norm statistics of `compress` lost points)."""
    data = open_dataset(DataConfig(str(make_folder(tmp_path / "photos", per_class=8)), val_fraction=0.25))
    ordered = next(data.batches("train", 6, train=False))[1]
    shuffled = next(data.batches("train", 6, train=False, shuffle=True))
    assert len(set(ordered.tolist())) == 1  # file order: the first class only
    assert len(set(shuffled[1].tolist())) > 1
    again = next(data.batches("train", 6, train=False, shuffle=True))
    assert torch.equal(shuffled[0], again[0])  # seeded, and without augmentation


def test_the_default_side_of_a_folder_comes_from_headers_without_decoding_every_image(tmp_path):
    from squeezelab.data.datasets import default_side

    for split in ("train", "test"):
        for name in ("cat", "dog"):
            for i in range(3):
                write_image(tmp_path / split / name / f"{i}.png", size=(32, 32), seed=i)
    whole = (tmp_path / "train" / "cat" / "0.png").read_bytes()
    (tmp_path / "train" / "cat" / "0.png").write_bytes(whole[: len(whole) // 2])  # header intact, pixels cut
    assert default_side(str(tmp_path)) == 32
    with pytest.raises(SqueezelabError, match="corrupt or truncated"):
        open_dataset(DataConfig(str(tmp_path)))
    assert default_side("synthetic:n=8,classes=2,size=24") == 24
