"""The paper's ImageNet SqueezeNet ships inside the package: it needs no path, no download, and a
damaged copy says so instead of answering nonsense."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import squeezelab
from squeezelab.errors import BadFileError
from squeezelab.models import weights as weights_module
from squeezelab.models.weights import WEIGHTS, packaged_file, pretrained_state_dict

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SQUEEZELAB_SHARED_DATA", ROOT.parent / "shared" / "data"))
RELEASED = SHARED / "squeezenet-dc" / "compressed_SqueezeNet.net"
PHOTOS = SHARED / "imagenet-photos"
RECORD = WEIGHTS["squeezenet1_0.DC_IMAGENET1K"]


def test_the_shipped_record_resolves_with_no_path_everywhere():
    assert len(pretrained_state_dict("DC_IMAGENET1K")) == 52
    model = squeezelab.create_model("squeezenet1_0", weights="DC_IMAGENET1K")
    assert model.record.classes[1] == "goldfish" and model.record.preprocessing.channel_order == "BGR"
    assert model.record.provenance.weights == RECORD.name
    loaded = squeezelab.load_model("DC_IMAGENET1K")
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    assert int(sum((p != 0).sum() for n, p in loaded.named_parameters() if n.endswith("weight"))) == 415_921


def test_a_damaged_install_fails_in_one_line(tmp_path, monkeypatch):
    damaged = tmp_path / RECORD.packaged
    damaged.write_bytes(packaged_file(RECORD).read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(weights_module, "PACKAGED", tmp_path)
    with pytest.raises(BadFileError, match="damaged install") as info:
        pretrained_state_dict("DC_IMAGENET1K")
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not RELEASED.is_file(), reason=f"{RELEASED} is absent (the shared data folder)")
def test_the_shipped_model_is_the_converted_release(tmp_path):
    from squeezelab.convert import convert_released

    convert_released(RELEASED, tmp_path / "m.pt")
    converted, shipped = squeezelab.load_model(tmp_path / "m.pt"), squeezelab.load_model("DC_IMAGENET1K")
    for (name, a), b in zip(converted.state_dict().items(), shipped.state_dict().values()):
        assert torch.equal(a, b), name
    assert converted.record.classes == shipped.record.classes
    if PHOTOS.is_dir():
        from squeezelab.data.images import open_image

        images = [open_image(p) for p in sorted(PHOTOS.iterdir())[:8]]
        batch = shipped.record.preprocessing.images_to_batch(images)
        with torch.no_grad():
            assert torch.allclose(converted(batch), shipped(batch), atol=1e-4)


def test_the_wheel_carries_the_weights_and_their_licence(tmp_path):
    import shutil

    source = tmp_path / "source"  # a copy: building writes build/ and egg-info beside the sources
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("squeezelab-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        shipped = archive.read("squeezelab/models/pretrained/compressed_SqueezeNet.net")
    assert "squeezelab/models/pretrained/LICENCE" in names
    assert shipped == packaged_file(RECORD).read_bytes()


def test_predict_answers_with_imagenet_class_names_offline(tmp_path):
    import json

    from PIL import Image

    from squeezelab.models.imagenet_classes import IMAGENET1K_NAMES
    from tests.helpers import run_main

    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (300, 200), (30, 120, 200)).save(photo)
    done = run_main("predict", "DC_IMAGENET1K", photo, "--json")
    assert done.returncode == 0, done.stderr
    predictions = json.loads(done.stdout)[0]["predictions"]
    assert len(predictions) == 5 and all(p["label"] in IMAGENET1K_NAMES for p in predictions)
    assert sum(p["probability"] for p in predictions) <= 1.0 + 1e-6
