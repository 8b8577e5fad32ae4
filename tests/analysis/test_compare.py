"""The peer comparison: one measured row per model, its Markdown/CSV tables and scatter plots."""

from __future__ import annotations

import csv
import importlib
import json

import pytest

from squeezelab.analysis.compare import DEFAULT_MODELS, CompareConfig, compare
from squeezelab.errors import SqueezelabError
from squeezelab.models import create_model

compare_module = importlib.import_module("squeezelab.analysis.compare")


def test_compare_no_train_json_measures_every_default_model_in_one_run(cli):
    done = cli("compare", "--no-train", "--json", "--min-seconds", "0.05", "--input-size", "96")  # sizes need no 224 px
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {r["model"]: r for r in json.loads(done.stdout)["rows"]}
    assert list(rows) == list(DEFAULT_MODELS)
    for row in rows.values():
        assert row["params"] > 0 and row["macs"] > 0 and row["size_bytes"] >= 4 * row["params"]
        assert row["latency_ms"] > 0 and row["latency_ort_ms"] > 0
    assert rows["squeezenet1_0"]["params"] == 1_248_424 and rows["tv/alexnet"]["params"] == 61_100_840
    # The paper's headline: AlexNet-level model, 50x fewer parameters.
    assert rows["tv/alexnet"]["size_bytes"] / rows["squeezenet1_0"]["size_bytes"] > 45


class FakeTrainer:
    """Stands in for the trainer: an accuracy that favours SqueezeNet and moves with the seed; it
    records its calls (the options each model was built with)."""

    def __init__(self):
        self.calls: list[tuple[str, int, dict]] = []

    def __call__(self, *, model, model_kwargs, data, epochs, seed, out_dir, train_options, threads, image_size,
                 amp):
        self.calls.append((model, seed, model_kwargs))
        accuracy = (0.9 if model.startswith("squeezenet") else 0.7) + 0.02 * seed
        return {"accuracy": accuracy, "accuracy_on": "test", "epochs": epochs, "seconds": 1.0, "out": str(out_dir),
                "num_classes": 4, "image_size": 48, "model_options": {**model_kwargs, "num_classes": 4}}


def test_compare_with_training_writes_tables_and_scatter_plots(tmp_path):
    config = CompareConfig(models=("squeezenet1_1", "tv/mobilenet_v3_small"), data="synthetic", epochs=1, seeds=1,
                           stem="imagenet", min_seconds=0.02)
    result = compare(config, tmp_path, train_fn=FakeTrainer())
    rows = result["rows"]
    assert [r["accuracy"] for r in rows] == [0.9, 0.7]
    assert [r["stem"] for r in rows] == ["standard", "imagenet"]
    assert all(r["num_classes"] == 4 and r["input_size"] == 48 for r in rows)
    table = (tmp_path / "compare.md").read_text().splitlines()
    assert table[0].startswith("| model | stem | params") and table[2].startswith("| squeezenet1_1 | standard | ")
    assert table[2].rstrip().endswith("| 90.0 | 0.0 |")
    with open(tmp_path / "compare.csv", newline="") as handle:
        assert [r["model"] for r in csv.DictReader(handle)] == ["squeezenet1_1", "tv/mobilenet_v3_small"]
    for name in ("compare_size.png", "compare_latency.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    files = json.loads((tmp_path / "compare.json").read_text())["files"]
    assert files["accuracy_vs_size"] == str(tmp_path / "compare_size.png")
    assert json.loads((tmp_path / "compare.json").read_text())["rows"][1]["model"] == "tv/mobilenet_v3_small"


def test_squeezenet_rows_carry_the_deep_compressed_size():
    from squeezelab.analysis.compare import compressed_size

    model = create_model("squeezenet1_1", num_classes=10)
    size = compressed_size(model)
    fp32 = sum(p.numel() * 4 for p in model.parameters())
    assert fp32 / 12 < size < fp32 / 4  # the paper: 4.8 MB -> 0.66 MB (7.3x) at 8 bits, a third kept
    assert compressed_size(create_model("tv/mobilenet_v3_small", num_classes=10)) is None


def test_small_images_train_every_model_with_its_cifar_stem_over_seeds_and_resume(tmp_path):
    models = ("squeezenet1_0", "tv/mobilenet_v3_small")
    trainer = FakeTrainer()
    config = CompareConfig(models=models, data="synthetic", epochs=1, seeds=2, min_seconds=0.02)
    result = compare(config, tmp_path, train_fn=trainer)  # synthetic images are 32 px: small
    assert sorted((m, s) for m, s, _ in trainer.calls) == sorted((m, s) for m in models for s in (0, 1))
    assert all(options["stem"] == "cifar" for _, _, options in trainer.calls)
    rows = {r["model"]: r for r in result["rows"]}
    assert {r["stem"] for r in rows.values()} == {"cifar"}
    assert rows["squeezenet1_0"]["accuracy_mean"] == pytest.approx(0.91)
    assert rows["squeezenet1_0"]["accuracy_std"] == pytest.approx(0.01414, abs=1e-4)
    assert rows["squeezenet1_0"]["seeds"] == 2 and rows["tv/mobilenet_v3_small"]["accuracy_on"] == "test"
    assert len(list((tmp_path / "points").glob("*.json"))) == 4

    rerun = FakeTrainer()  # one more seed: only it trains; the rest comes from the result files
    again = compare(CompareConfig(models=models, data="synthetic", epochs=1, seeds=3, min_seconds=0.02), tmp_path,
                    train_fn=rerun)
    assert sorted(s for _, s, _ in rerun.calls) == [2, 2] and again["skipped"] == 4
    with pytest.raises(SqueezelabError, match="different epochs"):
        compare(CompareConfig(models=models, data="synthetic", epochs=2, min_seconds=0.02), tmp_path,
                train_fn=FakeTrainer())


def test_compare_without_data_lists_squeezenet_cifar_and_cifar_stems_on_small_inputs(monkeypatch):
    # which models and stems, not their measurements (the --no-train test above measures all of them)
    monkeypatch.setattr(compare_module, "_measure", lambda name, model, input_size, config: {"model": name})
    rows = compare(CompareConfig(models=None, input_size=32, min_seconds=0.02))["rows"]
    assert [r["model"] for r in rows] == ["squeezenet_cifar", *DEFAULT_MODELS]
    assert all(r["stem"] == "cifar" for r in rows)


def test_an_unknown_model_or_an_impossible_stem_stops_before_anything_trains(tmp_path):
    trainer = FakeTrainer()
    with pytest.raises(SqueezelabError, match="nope"):
        compare(CompareConfig(models=("squeezenet1_1", "nope"), data="synthetic", epochs=1), tmp_path, train_fn=trainer)
    assert trainer.calls == []
    with pytest.raises(SqueezelabError, match="has no cifar stem"):
        compare(CompareConfig(models=("tv/squeezenet1_1",), stem="cifar", input_size=32, min_seconds=0.02))


def test_peer_options_reach_the_peers_only_and_join_the_recipe(tmp_path):
    trainer = FakeTrainer()
    config = CompareConfig(models=("squeezenet1_1", "tv/mobilenet_v3_small"), data="synthetic", epochs=1, seeds=1,
                           min_seconds=0.02, peer_options={"init": "he"})
    compare(config, tmp_path, train_fn=trainer)
    options = {model: opts for model, _, opts in trainer.calls}
    assert options["tv/mobilenet_v3_small"] == {"stem": "cifar", "init": "he"} and "init" not in options["squeezenet1_1"]
    assert json.loads((tmp_path / "recipe.json").read_text())["peer_options"] == {"init": "he"}
