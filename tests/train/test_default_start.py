"""Photo folders (images larger than 64 px) fine-tune from the shipped ImageNet weights by default;
--scratch, --weights none, small images, and a model those weights do not fit train from scratch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from squeezelab.train.recipe import start_weights
from tests.helpers import run_main


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two classes of 96x80 JPEGs (reddish and bluish noise): 10 a class."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for name, colour in (("red", (190, 50, 40)), ("blue", (40, 60, 190))):
        (root / name).mkdir()
        for i in range(10):
            pixels = np.clip(rng.normal(colour, 35, (80, 96, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.jpg")
    return root


def _train(photos, tmp_path, *flags):
    done = run_main("train", "--data", photos, "--epochs", "1", "--out", tmp_path / "run", "--json", *flags)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_a_photo_folder_fine_tunes_from_the_shipped_weights(photos, tmp_path):
    result, log = _train(photos, tmp_path, "--image-size", "96")
    assert result["start"] == "DC_IMAGENET1K" and result["model"]["name"] == "squeezenet1_0"
    assert "from DC_IMAGENET1K weights" in log and result["amp"] in ("bf16", "fp32") and result["amp_reason"]
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())
    assert recorded["train"]["recipe"] == "fine-tune" and recorded["preprocessing"]["channel_order"] == "BGR"


@pytest.mark.parametrize("flags", [["--scratch"], ["--weights", "none"]])
def test_scratch_is_one_flag_away(photos, tmp_path, flags):
    result, log = _train(photos, tmp_path, "--image-size", "96", *flags)
    assert result["start"] == "scratch" and result["model"]["name"] == "squeezenet1_1"
    assert "from scratch" in log


def test_a_model_the_weights_do_not_fit_trains_from_scratch_and_says_so(photos, tmp_path):
    result, log = _train(photos, tmp_path, "--image-size", "96", "--model", "squeezenet1_1")
    assert result["start"] == "scratch"
    assert "--model squeezenet1_1: the shipped ImageNet weights are squeezenet1_0's" in log


def test_scratch_and_weights_together_are_refused_in_one_line(photos, tmp_path):
    done = run_main("train", "--data", photos, "--scratch", "--weights", "m.pt", "--out", tmp_path)
    assert done.returncode == 2 and "contradict" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_start_rule():
    assert start_weights(None, 65) == ("squeezenet1_0.DC_IMAGENET1K", None)
    assert start_weights(None, 64) == (None, None)  # the small-image recipe
    assert start_weights("m.pt", 32) == ("m.pt", None)
    assert start_weights("NONE", 224) == (None, None)
    assert start_weights(None, 224, "squeezenet1_0") == ("squeezenet1_0.DC_IMAGENET1K", None)
