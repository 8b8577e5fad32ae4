"""Fine-tuning from pretrained weights: the weights pick the model, its options and the input; the
recipe is the fine-tuning one and is recorded; a load that fills too little is refused."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from squeezelab.preprocessing import CAFFE_IMAGENET
from tests.helpers import run_main

CAFFE_SMALL = dataclasses.replace(CAFFE_IMAGENET, resize=48, crop=40)  # Caffe's convention at a size a test affords


@pytest.fixture(scope="module")
def caffe_weights(tmp_path_factory):
    """A squeezenet1_0 without batch norm recorded with Caffe's input convention, as convert writes one."""
    from squeezelab import create_model
    from squeezelab.train.checkpoint import record_entries, save_checkpoint

    torch.manual_seed(0)
    model = create_model("squeezenet1_0", num_classes=10)
    record = model.record.replace(preprocessing=CAFFE_SMALL)
    path = tmp_path_factory.mktemp("weights") / "imagenet.pt"
    save_checkpoint(path, {**record_entries(record), "state_dict": model.state_dict()})
    return path, model.state_dict()


def test_open_pretrained_reads_architecture_and_input_from_each_kind(caffe_weights, tmp_path):
    from squeezelab import create_model
    from squeezelab.preprocessing import TORCHVISION_IMAGENET
    from squeezelab.train.transfer import open_pretrained

    path, _ = caffe_weights
    recorded = open_pretrained(path)
    assert recorded.model.name == "squeezenet1_0" and recorded.preprocessing == CAFFE_SMALL
    plain = tmp_path / "plain.pth"
    torch.save(create_model("squeezenet1_1", num_classes=5).state_dict(), plain)
    guessed = open_pretrained(plain)  # a torchvision state dict: the stem's shape tells 1.1
    assert guessed.model.name == "squeezenet1_1" and guessed.preprocessing == TORCHVISION_IMAGENET


def test_weights_decide_model_options_input_and_recipe(caffe_weights, tmp_path):
    path, source = caffe_weights
    out = tmp_path / "run"
    done = run_main("train", "--data", "synthetic:n=32,classes=2", "--weights", path, "--epochs", "2",
                    "--batch-size", "8", "--out", out, "--json")
    assert done.returncode == 0, done.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["name"] == "squeezenet1_0"  # not the scratch default squeezenet1_1
    assert config["model"]["options"]["num_classes"] == 2
    import squeezelab

    tuned = squeezelab.load_model(out / "best.pt")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in tuned.modules())  # the weights' model: no batch norm
    assert config["model"]["options"]["final_relu"] is False  # the new head
    assert config["preprocessing"]["channel_order"] == "BGR" and config["preprocessing"]["pixel_range"] == 255.0
    assert config["data"]["image_size"] == 40  # the weights' input size
    train = config["train"]
    assert (train["recipe"], train["optimizer"], train["pretrained_lr_factor"], train["frozen_stages"]) == (
        "fine-tune", "adamw", 0.3, 2)
    assert (train["epochs"], train["batch_size"]) == (2, 8)
    assert train["lr"] == pytest.approx(1.5e-2 / (255 * 0.226), rel=1e-3)  # scaled to Caffe's 0-255 input
    assert "loaded " in done.stderr and "new: classifier.1" in done.stderr
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert checkpoint["provenance"]["weights"] == str(path)
    lrs = sorted({group["initial_lr"] for group in checkpoint["optimizer"]["param_groups"]})
    assert lrs == pytest.approx([train["lr"] * 0.3, train["lr"]])  # pretrained layers at 0.3x the head's rate
    state = checkpoint["state_dict"]
    assert torch.equal(state["features.0.weight"], source["features.0.weight"])  # a frozen stage keeps its weights
    drift = (state["features.12.squeeze.weight"] - source["features.12.squeeze.weight"]).abs().max()
    assert 0 < drift < 0.01  # the later layers started from the weights and moved a little


def test_flags_override_the_weights_and_the_recipe(caffe_weights, tmp_path):
    path, _ = caffe_weights
    out = tmp_path / "run"
    done = run_main("train", "--data", "synthetic:n=32,classes=2", "--weights", path, "--epochs", "1", "--lr", "0.003",
                    "--optimizer", "sgd", "--image-size", "36", "--dropout", "0.2", "--out", out, "--json")
    assert done.returncode == 0, done.stderr
    config = json.loads((out / "config.json").read_text())
    assert (config["train"]["lr"], config["train"]["optimizer"]) == (0.003, "sgd")
    assert config["data"]["image_size"] == 36 and config["preprocessing"]["crop"] == 36
    assert config["preprocessing"]["channel_order"] == "BGR"
    assert config["model"]["options"]["dropout"] == 0.2


def test_a_mostly_scratch_load_is_refused_in_one_line(caffe_weights, tmp_path):
    path, _ = caffe_weights
    done = run_main("train", "--data", "synthetic:n=32,classes=2", "--weights", path, "--model", "squeezenet1_1", "--batch-size", "8",
                    "--epochs", "1", "--out", tmp_path / "run")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "fills only" in done.stderr and "squeezenet1_0" in done.stderr
    assert not (tmp_path / "run" / "last.pt").exists()
