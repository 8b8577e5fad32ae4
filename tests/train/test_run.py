import csv
import json
import math

import pytest
import torch
from torch.nn.utils import prune

import squeezelab
from squeezelab.data import DataConfig, open_dataset
from squeezelab.errors import SqueezelabError
from squeezelab.train.config import TrainConfig
from squeezelab.train.guard import LossGuard, TrainingStopped
from squeezelab.train.run import train
from squeezelab.train.trainer import fine_tune
from squeezelab.train.schedule import lr_factor

TINY = DataConfig("synthetic:n=48,classes=3,size=12")


def test_lr_schedule_warms_up_then_decays():
    values = [lr_factor(s, 100, 10) for s in range(101)]
    assert values[0] == pytest.approx(0.1) and values[9] == 1.0
    assert all(a >= b for a, b in zip(values[10:], values[11:])) and values[-1] == pytest.approx(0.0)
    assert lr_factor(50, 100, 10, "constant") == 1.0


def test_loss_guard_stops_on_nan_and_on_chance():
    with pytest.raises(TrainingStopped, match="nan"):
        LossGuard(10).check(float("nan"), 1, 3)
    guard = LossGuard(10, stuck_steps=5)
    for step in range(4):
        guard.check(math.log(10), 1, step)
    with pytest.raises(TrainingStopped, match="final_relu=False"):
        guard.check(math.log(10) + 0.001, 1, 4)
    guard = LossGuard(10, stuck_steps=5)
    for step in range(20):  # a loss that moves is never "stuck"
        guard.check(math.log(10) - 0.1 * (step % 2 + 1), 1, step)


def test_train_writes_run_outputs_and_checkpoint_rebuilds(tmp_path):
    result = train(data_config=TINY, train_config=TrainConfig(epochs=2, batch_size=16, lr=0.05), out=tmp_path)
    assert set(result) >= {"best_val_acc", "epochs", "seconds", "checkpoint"}
    assert result["epochs"] == 2
    val_accs = [float(row["val_acc"]) for row in csv.DictReader((tmp_path / "metrics.csv").open(newline=""))]
    assert result["best_val_acc"] == pytest.approx(max(val_accs), abs=1e-6)
    for name in ("last.pt", "best.pt", "metrics.csv", "curves.png", "confusion.png", "per_class.csv", "config.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 3
    model = squeezelab.load_model(tmp_path / "best.pt")
    assert model.record.classes == ("class0", "class1", "class2") and model.record.preprocessing.crop == 12
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["data"]["split"]["val"] and config["model"]["name"] == "squeezenet_cifar"
    assert isinstance(model.classifier[2], torch.nn.Identity)  # no ReLU after the final conv


def test_unwritable_out_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SqueezelabError, match="cannot write to --out"):
        train(data_config=TINY, train_config=TrainConfig(epochs=1), out=blocker / "run")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    train(data_config=TINY, train_config=TrainConfig(epochs=1, batch_size=16), out=tmp_path)
    good = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(TrainingStopped, match="loss became"):
        train(data_config=TINY, train_config=TrainConfig(epochs=3, batch_size=16, lr=1e30, warmup_epochs=0),
              out=tmp_path, resume=False)
    assert (tmp_path / "last.pt").read_bytes() == good


def test_fine_tune_trains_a_pruned_module_in_place():
    data = open_dataset(TINY)
    model = squeezelab.create_model("squeezenet1_1", num_classes=3, stem="small", batch_norm=True, final_relu=False)
    conv = model.features[0]
    prune.l1_unstructured(conv, "weight", amount=0.5)
    before = conv.weight_orig.detach().clone()
    history = fine_tune(model, data, epochs=1, lr=0.05, batch_size=16)
    assert len(history) == 1
    with torch.no_grad():  # the recorded accuracy is the fine-tuned model's on the validation split
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in data.batches("val", 256))
    assert history[0]["val_acc"] == pytest.approx(correct / len(data.val))
    assert not torch.equal(before, conv.weight_orig)  # the parametrised weight was trained
    assert int((conv.weight == 0).sum()) >= conv.weight.numel() // 2  # and the mask still applies
    assert hasattr(conv, "weight_mask") and not model.training


def test_weights_for_fine_tuning_keep_features_and_a_fresh_head(tmp_path):
    import torch

    from squeezelab import create_model
    from squeezelab.errors import SqueezelabError
    from squeezelab.train.checkpoint import save_checkpoint
    from squeezelab.train.transfer import load_pretrained, open_pretrained

    source = create_model("squeezenet1_1", num_classes=10)
    plain = tmp_path / "torchvision_format.pth"
    torch.save(source.state_dict(), plain)
    wrapped = tmp_path / "squeezelab.pt"
    save_checkpoint(wrapped, {"model": {"name": "squeezenet1_1", "options": {}}, "state_dict": source.state_dict()})
    for path in (plain, wrapped):
        target = create_model("squeezenet1_1", num_classes=4)
        load_pretrained(target, open_pretrained(path))
        assert torch.equal(target.features[0].weight, source.features[0].weight)
        assert not target.classifier[1].weight.any()  # the new head starts at zero: every class equal
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"junk")
    with pytest.raises(SqueezelabError):
        load_pretrained(create_model("squeezenet1_1", num_classes=4), open_pretrained(junk))
    with pytest.raises(SqueezelabError, match="fills only 0% of this model"):
        load_pretrained(create_model("tv/mobilenet_v2", num_classes=4), open_pretrained(plain))


def test_small_images_get_the_small_image_recipe_and_model_by_default(tmp_path):
    from squeezelab.cli import main

    assert main(["train", "--data", "synthetic:n=64,classes=2", "--epochs", "1", "--out", str(tmp_path), "--json"]) == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"]["name"] == "squeezenet_cifar"
    train_config = config["train"]
    assert (train_config["recipe"], train_config["schedule"], train_config["translate"]) == ("small-images", "linear", 2)
    assert train_config["whiten_stem"] is True
    assert (train_config["batch_size"], train_config["lr"]) == (16, 0.0125)  # 48 training images: batch 16, lr scaled


def test_the_32px_recipe_lowers_the_loss_within_a_few_epochs(tmp_path):
    data = DataConfig("synthetic:n=640,classes=4,size=32")
    result = train(data_config=data, train_config=TrainConfig(epochs=4, stuck_steps=0), out=tmp_path)
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open(newline="")))
    losses = [float(row["train_loss"]) for row in rows]
    assert result["model"]["name"] == "squeezenet_cifar" and len(losses) == 4
    assert losses[-1] < 0.8 * losses[0], losses


def test_the_recipes_translate_and_cutout_replace_the_datas_augmentation(tmp_path):
    from squeezelab.train.recipe import augmentation

    assert augmentation(TrainConfig(translate=1, cutout=6)) == {"pad": 1, "cutout": 6}
    assert augmentation(TrainConfig()) == {}
    train(data_config=DataConfig("synthetic:n=48,classes=3,size=16"),
          train_config=TrainConfig(epochs=1, translate=1, cutout=6, stuck_steps=0), out=tmp_path)
    recorded = json.loads((tmp_path / "config.json").read_text())["train"]
    assert (recorded["translate"], recorded["cutout"]) == (1, 6)


def test_whiten_stem_sets_a_fresh_models_first_conv_from_the_training_images(tmp_path):
    from squeezelab.train.recipe import DataFacts, plan
    from squeezelab.train.trainer import start_model

    data = open_dataset(TINY)
    facts = DataFacts(data.image_size, data.num_classes, len(data.train))
    plain = start_model(plan(facts, TrainConfig(whiten_stem=False, epochs=1, lr=0.1)), data)
    whitened = start_model(plan(facts, TrainConfig(whiten_stem=True, epochs=1, lr=0.1)), data)
    assert not plan(facts, TrainConfig(whiten_stem=True), resumed=True).init_from_data
    assert not torch.equal(whitened.features[0].weight, plain.features[0].weight)
    assert torch.equal(whitened.features[0].weight[16:], -whitened.features[0].weight[:16])
    train(data_config=TINY, train_config=TrainConfig(epochs=1, whiten_stem=True, stuck_steps=0), out=tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["train"]["whiten_stem"] is True
