import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_DATA, one_line_error, run_console
from PIL import Image


def test_train_json_is_the_run_result(trained_run):
    result, out = trained_run
    with open(out / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and result["epochs"] == 2
    best = max(rows, key=lambda r: float(r["val_acc"]))
    assert result["best_val_acc"] == pytest.approx(float(best["val_acc"]), abs=1e-6)  # the CSV keeps 6 digits
    assert result["best_epoch"] == int(best["epoch"])
    assert result["train_images"] + result["val_images"] == 48
    correct = result["best_val_acc"] * result["val_images"]  # a fraction of whole images
    assert correct == pytest.approx(round(correct))
    assert result["checkpoint"] == str(out / "best.pt")


def test_eval_and_predict_a_trained_checkpoint(trained_run, cli, tmp_path):
    result, _ = trained_run
    e = cli("eval", result["checkpoint"], "--json")
    assert e.returncode == 0, e.stderr
    metrics = json.loads(e.stdout)  # no --data: the validation split recorded in the checkpoint
    assert metrics["top1"] == pytest.approx(result["best_val_acc"])
    assert metrics["count"] == result["val_images"]
    assert len(metrics["confusion"]) == 3 and metrics["top5"] is None
    assert sum(map(sum, metrics["confusion"])) == result["val_images"]
    png = tmp_path / "x y.png"
    Image.fromarray((np.random.default_rng(0).random((50, 31, 4)) * 255).astype("uint8"), "RGBA").save(png)
    p = cli("predict", result["checkpoint"], png, "--topk", "2", "--json")
    assert p.returncode == 0, p.stderr
    preds = json.loads(p.stdout)[0]["predictions"]
    assert len(preds) == 2 and preds[0]["probability"] >= preds[1]["probability"]
    assert preds[0]["class"] in {"class0", "class1", "class2"}


def test_eval_and_predict_print_tables_without_json(trained_run, cli, tmp_path):
    result, _ = trained_run
    e = cli("eval", result["checkpoint"])
    assert e.returncode == 0 and e.stdout.startswith("top-1 ") and "class2" in e.stdout
    png = tmp_path / "a.png"
    Image.new("RGB", (12, 12), (10, 20, 30)).save(png)
    p = cli("predict", result["checkpoint"], png, "--topk", "1")
    assert p.returncode == 0 and p.stdout.startswith(f"{png}: class")


@pytest.mark.parametrize("args, words", [
    (["train", "--data", "/nonexistent/photos"], "not found"),
    (["train", "--epochs", "0"], "--epochs"),
    (["eval", "/nonexistent.pt"], "does not exist"),
    (["predict", "/nonexistent.pt", "x.png", "--topk", "0"], "--topk"),
    (["train", "--epochs", "two"], "invalid int value"),
])
def test_bad_input_is_one_line_exit_2(cli, args, words):
    one_line_error(cli(*args), words)


def test_not_a_checkpoint(tmp_path, cli):
    fake = tmp_path / "model.pt"
    fake.write_bytes(b"definitely not a checkpoint")
    for command in (["eval", fake], ["predict", fake, fake]):
        done = cli(*command)
        one_line_error(done, "model.pt")


def test_corrupt_image_in_folder_exits_2_naming_it_then_skips(tmp_path, cli):
    for k, name in enumerate(["a", "b"]):
        for i in range(5):
            (tmp_path / "d" / name).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (20 + i, 18), (200 * k, 50, 50)).save(tmp_path / "d" / name / f"{i}.png")
    (tmp_path / "d" / "a" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    args = ["train", "--data", tmp_path / "d", "--image-size", "16", "--epochs", "1", "--out", tmp_path / "o"]
    one_line_error(cli(*args), "bad.png")
    assert not (tmp_path / "o" / "last.pt").exists()
    r = cli(*args, "--skip-bad-images", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["skipped_images"] == 1 and result["train_images"] + result["val_images"] == 10


def test_the_console_script_reports_a_mistake_in_one_line():
    """End to end through the installed `squeezelab` script: nothing but the one line reaches the terminal."""
    script = Path(sys.executable).with_name("squeezelab")
    done = subprocess.run([str(script), "train", "--data", TINY_DATA, "--epochs", "0"], capture_output=True, text=True,
                          timeout=300)
    one_line_error(done, "--epochs")
    assert done.stdout == ""


@pytest.mark.slow
def test_default_digits_run_reaches_97_percent(tmp_path):
    """The acceptance run: `squeezelab train --json` with no arguments (only --out moved to tmp)."""
    r = run_console("train", "--json", "--out", tmp_path / "run", timeout=900)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["best_val_acc"] >= 0.97
    e = run_console("eval", result["checkpoint"], "--json")
    assert json.loads(e.stdout)["top1"] == pytest.approx(result["best_val_acc"])
