"""bench/cifar10_compress.py on a generated train/ + test/ folder: the Table 2 row of one setting,
scored on test/ through the decoded file, kept as a result file and reused by a rerun."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from data.image_builders import make_folder
from helpers import load_bench

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cifar10_compress.py"


def _bench(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *map(str, args)], capture_output=True, text=True, timeout=600)


def test_one_setting_gives_a_table_2_row_measured_on_the_test_images(tmp_path, cli):
    root = tmp_path / "photos"
    make_folder(root / "train", classes=("red", "green"), per_class=12, size=(24, 24))
    make_folder(root / "test", classes=("red", "green"), per_class=3, size=(24, 24))
    trained = cli("train", "--data", root, "--epochs", "1", "--out", tmp_path / "run", "--json")
    assert trained.returncode == 0, trained.stderr[-2000:]
    checkpoint = json.loads(trained.stdout)["checkpoint"]

    done = _bench(checkpoint, "--data", root, "--out", tmp_path / "dc", "--settings", "paper-8bit-no-finetune",
                  "--json", "--threads", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    [row] = json.loads(done.stdout.splitlines()[-1])
    assert row["setting"] == "paper-8bit-no-finetune" and row["test_images"] == 6
    assert row["sqz_bytes"] < row["fp32_bytes"] and row["ratio"] > 4
    assert 0 <= row["top1_after"] <= 1 and 0 <= row["top1_before"] <= 1
    assert "| paper-8bit-no-finetune | " in done.stdout
    assert (tmp_path / "dc" / "points" / "paper-8bit-no-finetune-seed0.json").is_file()

    again = _bench(checkpoint, "--data", root, "--out", tmp_path / "dc", "--settings", "paper-8bit-no-finetune",
                   "--json")
    assert "compressing" not in again.stdout and json.loads(again.stdout.splitlines()[-1]) == [row]


def test_a_folder_without_test_is_refused_in_one_line(tmp_path):
    make_folder(tmp_path / "photos", classes=("a", "b"), per_class=2)
    done = _bench(tmp_path / "missing.pt", "--data", tmp_path / "photos", "--out", tmp_path / "dc")
    assert done.returncode != 0 and "needs train/ and test/" in done.stderr and "Traceback" not in done.stderr


def test_finetune_epochs_reach_only_the_settings_that_fine_tune():
    bench = load_bench("cifar10_compress")
    assert bench.options_of("default", 1) == {"finetune_epochs": 1}
    assert bench.options_of("paper-6bit", None) == bench.SETTINGS["paper-6bit"]
    assert bench.options_of("share-5bit", 1) == bench.SETTINGS["share-5bit"]  # nothing to fine-tune
