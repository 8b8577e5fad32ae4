"""bench/cifar10.py's smoke run on the real CIFAR-10 images: the JSON line a full run ends with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import load_bench

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cifar10.py"
ARCHIVE = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-jpg.tar.gz"


@pytest.mark.slow
@pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"needs the CIFAR-10 archive at {ARCHIVE} (not in the repository)")
def test_quick_run_ends_with_the_figures_of_the_model_it_was_given():
    from squeezelab.models import create_model

    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", "--model-option", "bypass=simple"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    assert {"test_acc", "test_acc_tta", "minutes", "epochs", "model", "params", "macs", "seed", "load"} <= set(figures)
    assert figures["epochs"] == 1 and figures["model_options"] == {"bypass": "simple"}
    # the trainer adds the classifier's batch norm to a batch-norm SqueezeNet with bypass
    expected = create_model("squeezenet_cifar", bypass="simple", head_norm=True)
    assert figures["params"] == sum(p.numel() for p in expected.parameters())
    assert 0.0 <= figures["test_acc"] <= 1.0


def test_out_keeps_the_figures_as_a_result_file_named_by_model_options_and_table(tmp_path):
    from squeezelab.analysis.store import read_unit

    bench = load_bench("cifar10")
    assert bench.point_key("tv/mobilenet_v3_small", {"stem": "cifar"}, None) == "tv_mobilenet_v3_small-stem-cifar"
    table = [["conv", 32, 3, 1, 1], ["fire", 16, 32, 32]]
    assert bench.point_key("squeezenet_cifar", {}, table) != bench.point_key("squeezenet_cifar", {}, table[:1])
    figures = {"test_acc": 0.5, "test_acc_tta": 0.52, "seed": 3, "model": "squeezenet_cifar", "model_options": {}}
    bench.write_point(tmp_path, "squeezenet_cifar", figures)
    record = read_unit(tmp_path, "squeezenet_cifar", 3)
    assert record["accuracy"] == 0.5 and record["accuracy_on"] == "test" and record["test_acc_tta"] == 0.52


def test_a_smoke_run_is_not_kept_as_a_result():
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--out", "somewhere"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "--quick is a smoke run" in done.stderr and "Traceback" not in done.stderr


def test_holdout_trains_and_scores_on_disjoint_training_images_only(tmp_path):
    bench = load_bench("cifar10")
    root = tmp_path / "cifar"
    for split, count in (("train", 503), ("test", 2)):
        for label in ("cat", "dog"):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                (root / split / label / f"{split}{i:04}.jpg").write_bytes(b"")
    folder = bench.holdout(root, tmp_path / "cache", 3)
    for label in ("cat", "dog"):
        trained = {p.name for p in (folder / "train" / label).iterdir()}
        scored = {p.resolve() for p in (folder / "test" / label).iterdir()}
        assert len(trained) == 3 and len(scored) == bench.HELD_OUT_PER_CLASS
        assert not trained & {p.name for p in scored} and all(p.parent.parent.name == "train" for p in scored)
    with pytest.raises(SystemExit, match="--holdout takes 1 to 3"):
        bench.holdout(root, tmp_path / "cache", 4)


def test_link_folders_are_made_whole_or_not_at_all(tmp_path):
    bench = load_bench("cifar10")
    image = tmp_path / "a.jpg"
    image.write_bytes(b"")
    folder = tmp_path / "cache" / "linked"
    (folder / "train").mkdir(parents=True)  # half-made: no .complete
    assert bench.link_folder(folder, lambda: {"train": {"cat": [image]}}) == folder
    assert (folder / "train" / "cat" / "a.jpg").resolve() == image and (folder / ".complete").exists()
    assert bench.link_folder(folder, lambda: {"train": {"dog": [image]}}) == folder  # made once
    assert not (folder / "train" / "dog").exists()
    assert [p.name for p in folder.parent.iterdir()] == ["linked"]  # no temporary folder left
