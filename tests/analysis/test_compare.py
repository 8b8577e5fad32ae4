"""The peer comparison: one measured row per model, its Markdown/CSV tables and scatter plots."""

from __future__ import annotations

import csv
import json

from squeezelab.analysis.compare import DEFAULT_MODELS, CompareConfig, compare
from squeezelab.models import create_model
from squeezelab.models.config import ModelConfig
from squeezelab.train.checkpoint import save_checkpoint


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
    """Writes an untrained model as a checkpoint, with an accuracy that favours SqueezeNet."""

    def __call__(self, *, model, model_kwargs, data, epochs, seed, out_dir, train_options, image_size):
        options = {"num_classes": 4}
        checkpoint = out_dir / "best.pt"
        save_checkpoint(checkpoint, {"model": ModelConfig(model, options).to_dict(),
                                     "state_dict": create_model(model, **options).state_dict()})
        return {"best_val_acc": 0.9 if model.startswith("squeezenet") else 0.7, "epochs": epochs, "seconds": 1.0,
                "checkpoint": str(checkpoint), "out": str(out_dir), "num_classes": 4, "image_size": 48,
                "model_options": options}


def test_compare_with_training_writes_tables_and_scatter_plots(tmp_path):
    config = CompareConfig(models=("squeezenet1_1", "tv/mobilenet_v3_small"), data="synthetic", epochs=1,
                           min_seconds=0.02)
    result = compare(config, tmp_path, train_fn=FakeTrainer())
    rows = result["rows"]
    assert [r["accuracy"] for r in rows] == [0.9, 0.7]
    assert all(r["num_classes"] == 4 and r["input_size"] == 48 for r in rows)
    table = (tmp_path / "compare.md").read_text().splitlines()
    assert table[0].startswith("| model | params") and table[2].startswith("| squeezenet1_1 | ")
    assert table[2].rstrip().endswith("| 90.0 |")
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
