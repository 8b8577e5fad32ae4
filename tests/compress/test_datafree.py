"""Compression from unlabelled images: the allocation follows sensitivity within the byte budget,
and `compress --calib-data` reports agreement measured on images disjoint from the calibration set."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from squeezelab.compress.datafree import Option, allocate, split_images
from tests.helpers import run_main


def test_allocation_spends_error_where_it_is_cheapest_and_fits_the_budget():
    options = {
        "robust": [Option(1.0, 8, 0.0, 1000), Option(1.0, 4, 0.001, 500)],
        "fragile": [Option(1.0, 8, 0.0, 1000), Option(1.0, 4, 0.5, 500)],
    }
    chosen = allocate(options, 1500)
    assert chosen["robust"].bits == 4 and chosen["fragile"].bits == 8
    assert sum(o.bytes for o in allocate(options, 1000).values()) == 1000  # both give bits when they must
    assert allocate(options, 10_000) == {"robust": options["robust"][0], "fragile": options["fragile"][0]}


def test_network_sensitivity_is_zero_for_a_lossless_setting_and_grows_as_bits_go():
    from torch.nn.utils import parametrize

    from squeezelab import create_model
    from squeezelab.compress.config import QuantConfig
    from squeezelab.compress.datafree import logits, network_options
    from squeezelab.compress.quantize import quantize_
    from squeezelab.preprocessing import TORCHVISION_IMAGENET

    torch.manual_seed(0)
    model = quantize_(create_model("squeezenet1_1", num_classes=10, final_relu=False), QuantConfig(bits=6))
    for module in model.modules():  # plain weights that hold at most 64 values each, as a converted file does
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    prep = dataclasses.replace(TORCHVISION_IMAGENET, resize=36, crop=32)
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    teacher = logits(model, images, prep)
    options = network_options(model, images, teacher, prep, densities=(1.0,), bits=(8, 6, 2))
    for found in options.values():
        eight, six, two = found
        assert eight.error < 1e-9 and six.error < 1e-9  # no more values than centroids: exact
        assert two.error > 0 and two.bytes < six.bytes
    assert torch.equal(logits(model, images, prep), teacher)  # every layer put back


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small generated SqueezeNet at 32 px and 60 generated photos-like images (smooth colour fields)."""
    from PIL import Image

    from squeezelab import create_model
    from squeezelab.preprocessing import TORCHVISION_IMAGENET
    from squeezelab.train.checkpoint import record_entries, save_checkpoint

    root = tmp_path_factory.mktemp("datafree")
    torch.manual_seed(0)
    model = create_model("squeezenet_meta", base_e=16, incr_e=16, num_classes=5)
    record = model.record.replace(preprocessing=dataclasses.replace(TORCHVISION_IMAGENET, resize=36, crop=32))
    save_checkpoint(root / "m.pt", {**record_entries(record), "state_dict": model.state_dict()})
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40] / 40.0
    for i in range(60):
        a = rng.uniform(0, 1, (3, 3))
        image = np.stack([a[c, 0] * xx + a[c, 1] * yy + a[c, 2] * np.sin(6 * xx * (i % 5 + 1)) for c in range(3)], -1)
        folder = root / "photos" / ("a" if i % 2 else "b")  # any layout: searched recursively
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.mark.slow  # about a minute on 2 cores: 26 layers x 24 settings, then refinement
def test_compress_from_unlabelled_images_reports_held_out_agreement(tiny):
    import squeezelab
    from squeezelab.compress.datafree import load_images, logits

    target = 15_000
    done = run_main("compress", tiny / "m.pt", "-o", tiny / "m.sqz", "--calib-data", tiny / "photos",
                    "--calib-images", 16, "--held-out-images", 30, "--target-bytes", target, "--distill-epochs", 1,
                    "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["compressed_bytes"] == (tiny / "m.sqz").stat().st_size <= target
    assert result["acc_before"] is None and result["acc_after"] is None  # no labels
    assert (result["calibration_images"], result["held_out_images"]) == (16, 30)
    calib, held = split_images(tiny / "photos", 16, 30)
    assert not set(calib) & set(held)
    original, packed = squeezelab.load_model(tiny / "m.pt"), squeezelab.load_model(tiny / "m.sqz")
    prep = original.record.preprocessing
    images = load_images(held, prep)
    agreement = float((logits(original, images, prep).argmax(1) == logits(packed, images, prep).argmax(1)).float().mean())
    assert result["top1_agreement"] == pytest.approx(agreement)
    assert {layer["bits"] for layer in result["layers"] if layer["kind"] == "shared"} - {None} <= set(range(3, 9))


def test_too_few_images_or_data_with_calib_data_is_one_line(tiny):
    done = run_main("compress", tiny / "m.pt", "-o", tiny / "x.sqz", "--calib-data", tiny / "photos", "--calib-images", 60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "holds 60 images" in done.stderr
    done = run_main("compress", tiny / "m.pt", "-o", tiny / "x.sqz", "--calib-data", tiny / "photos", "--data", "digits")
    assert done.returncode == 2 and "pick one" in done.stderr
    assert not (tiny / "x.sqz").exists()
