import json

import numpy as np
import pytest
from PIL import Image


def test_train_eval_predict_round_trip(tmp_path, cli):
    out = tmp_path / "run"
    r = cli("train", "--data", "synthetic:n=60,classes=3,size=12", "--epochs", "2", "--batch-size", "16",
            "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)  # nothing but the JSON on stdout
    assert 0 <= result["best_val_acc"] <= 1 and result["epochs"] == 2
    e = cli("eval", result["checkpoint"], "--json")
    assert e.returncode == 0, e.stderr
    metrics = json.loads(e.stdout)
    assert metrics["top1"] == pytest.approx(result["best_val_acc"])
    assert len(metrics["confusion"]) == 3 and metrics["top5"] is None
    png = tmp_path / "x y.png"
    Image.fromarray((np.random.default_rng(0).random((50, 31, 4)) * 255).astype("uint8"), "RGBA").save(png)
    p = cli("predict", result["checkpoint"], str(png), "--topk", "2", "--json")
    assert p.returncode == 0, p.stderr
    preds = json.loads(p.stdout)[0]["predictions"]
    assert len(preds) == 2 and preds[0]["probability"] >= preds[1]["probability"]
    assert preds[0]["class"] in {"class0", "class1", "class2"}


@pytest.mark.parametrize("args, words", [
    (["train", "--data", "/nonexistent/photos"], "not found"),
    (["train", "--epochs", "0"], "--epochs"),
    (["eval", "/nonexistent.pt"], "does not exist"),
])
def test_bad_input_is_one_line_exit_2(cli, args, words):
    r = cli(*args)
    assert r.returncode == 2 and words in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_not_a_checkpoint(tmp_path, cli):
    fake = tmp_path / "model.pt"
    fake.write_bytes(b"definitely not a checkpoint")
    for command in (["eval", str(fake)], ["predict", str(fake), str(fake)]):
        r = cli(*command)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_corrupt_image_in_folder_exits_2_naming_it_then_skips(tmp_path, cli):
    for k, name in enumerate(["a", "b"]):
        for i in range(5):
            (tmp_path / "d" / name).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (20 + i, 18), (200 * k, 50, 50)).save(tmp_path / "d" / name / f"{i}.png")
    (tmp_path / "d" / "a" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    r = cli("train", "--data", str(tmp_path / "d"), "--image-size", "16", "--epochs", "1", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "bad.png" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("train", "--data", str(tmp_path / "d"), "--image-size", "16", "--epochs", "1", "--out", str(tmp_path / "o"),
            "--skip-bad-images", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["skipped_images"] == 1


@pytest.mark.slow
def test_default_digits_run_reaches_97_percent(tmp_path, cli):
    """The acceptance run: `squeezelab train --json` with no arguments (only --out moved to tmp)."""
    r = cli("train", "--json", "--out", str(tmp_path / "run"), timeout=900)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["best_val_acc"] >= 0.97
    e = cli("eval", result["checkpoint"], "--json")
    assert json.loads(e.stdout)["top1"] == pytest.approx(result["best_val_acc"])
