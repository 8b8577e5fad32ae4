"""`squeezelab compare --data FOLDER` end to end with the real trainer, on a folder with train/ and
test/ as CIFAR-10's JPEG folders are laid out: the final models are scored on test/."""

from __future__ import annotations

import json

from data.image_builders import make_folder


def test_compare_on_train_and_test_folders_scores_final_models_on_test_over_seeds(tmp_path, cli):
    root = tmp_path / "photos"
    make_folder(root / "train", classes=("red", "green"), per_class=10, size=(24, 24))
    make_folder(root / "test", classes=("red", "green"), per_class=3, size=(24, 24))
    out = tmp_path / "compare"
    done = cli("compare", "--data", root, "--models", "squeezenet1_1,tv/mobilenet_v3_small", "--epochs", "1",
               "--seeds", "2", "--min-seconds", "0.02", "--out", out, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    rows = {r["model"]: r for r in result["rows"]}
    assert list(rows) == ["squeezenet1_1", "tv/mobilenet_v3_small"]
    for row in rows.values():
        assert row["stem"] == "cifar" and row["seeds"] == 2 and row["accuracy_on"] == "test"
        assert {"model", "params", "macs", "size_bytes", "compressed_bytes", "latency_ms", "stem",
                "accuracy_mean", "accuracy_std", "seeds"} <= set(row)
        assert len(row["accuracies"]) == 2 and row["accuracy_min"] <= row["accuracy_mean"] <= row["accuracy_max"]
    points = sorted(p.name for p in (out / "points").glob("*.json"))
    assert points == ["squeezenet1_1-seed0.json", "squeezenet1_1-seed1.json",
                      "tv_mobilenet_v3_small-seed0.json", "tv_mobilenet_v3_small-seed1.json"]
    record = json.loads((out / "points" / points[0]).read_text())
    assert record["accuracy_on"] == "test" and record["accuracy"] * 6 == round(record["accuracy"] * 6)  # of 6 images

    again = cli("compare", "--data", root, "--models", "squeezenet1_1,tv/mobilenet_v3_small", "--epochs", "1",
                "--seeds", "2", "--min-seconds", "0.02", "--out", out, "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["trained"] == 0  # the table rebuilds from the result files
