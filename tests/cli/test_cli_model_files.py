"""`eval`, `predict` and `bench` on every model file format: a checkpoint, its ONNX export and the
int8 ONNX file answer the same questions, through `squeezelab.cli.main` in this process."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import one_line_error, write_small_checkpoint
from PIL import Image

import squeezelab

CLASSES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 3-class checkpoint (64 px), its fp32 and int8 ONNX exports, and a labelled folder of 12
    images named by class; returns {"pt", "onnx", "int8", "images"}."""
    from helpers import run_main

    tmp = tmp_path_factory.mktemp("model-files")
    pt = write_small_checkpoint(tmp / "model.pt", CLASSES)
    images = tmp / "images"
    rng = np.random.default_rng(0)
    for i in range(12):
        (images / CLASSES[i % 3]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(images / CLASSES[i % 3] / f"{i}.jpg")
    done = run_main("export", pt, "-o", tmp / "m.onnx", "--int8", "--calib-data", images)
    assert done.returncode == 0, done.stderr
    return {"pt": pt, "onnx": tmp / "m.onnx", "int8": tmp / "m.int8.onnx", "images": images}


def _eval(cli, path, images):
    done = cli("eval", path, "--data", images, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _predict(cli, path, images):
    done = cli("predict", path, images, "--topk", "3", "--json")
    assert done.returncode == 0, done.stderr
    return {Path(r["path"]).name: r for r in json.loads(done.stdout)}


def test_onnx_evaluates_and_predicts_as_its_checkpoint(cli, files):
    pt, onnx = _eval(cli, files["pt"], files["images"]), _eval(cli, files["onnx"], files["images"])
    assert pt["count"] == onnx["count"] == 12  # a folder the model never saw: all of it
    assert (pt["format"], onnx["format"]) == ("pytorch", "onnx")
    assert onnx["top1"] == pt["top1"] and onnx["confusion"] == pt["confusion"]
    assert onnx["loss"] == pytest.approx(pt["loss"], abs=1e-4)
    by_pt, by_onnx = _predict(cli, files["pt"], files["images"]), _predict(cli, files["onnx"], files["images"])
    assert sorted(by_pt) == sorted(by_onnx) and len(by_pt) == 12
    for name, r in by_pt.items():
        ours, theirs = r["predictions"], by_onnx[name]["predictions"]
        assert [p["label"] for p in ours] == [p["label"] for p in theirs]
        assert [p["probability"] for p in ours] == pytest.approx([p["probability"] for p in theirs], abs=1e-4)


def test_int8_accuracy_is_measured_on_the_labelled_folder(cli, files):
    result = _eval(cli, files["int8"], files["images"])
    assert result["count"] == 12 and result["format"] == "onnx"
    assert sum(map(sum, result["confusion"])) == 12
    predictions = _predict(cli, files["int8"], files["images"])
    # eval's top-1 is the share of images whose predicted class is the folder they sit in
    right = sum(r["predictions"][0]["label"] == Path(r["path"]).parent.name for r in predictions.values())
    assert result["top1"] == pytest.approx(right / 12)
    table = cli("eval", files["int8"], "--data", files["images"])
    assert table.returncode == 0 and f"top-1 {right / 12:.4f}" in table.stdout and "on 12 images" in table.stdout


def test_onnx_without_data_asks_for_it(cli, files):
    one_line_error(cli("eval", files["onnx"]), "--data")


def test_predict_int8_onnx_writes_csv(cli, files, tmp_path):
    out = tmp_path / "out.csv"
    done = cli("predict", files["int8"], files["images"], "--csv", out)
    assert done.returncode == 0, done.stderr
    rows = out.read_text().splitlines()
    assert rows[0].startswith("path,label,probability") and len(rows) == 13
    assert f"wrote {out} (12 images)" in done.stdout


def test_bench_times_an_onnx_file_on_its_own_engine(cli, files):
    done = cli("bench", files["int8"], "--batch-size", "1,2", "--min-seconds", "0.05", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["backend"], r["batch"]) for r in rows] == [("onnx", 1), ("onnx", 2)]
    for r in rows:
        assert r["model"] == str(files["int8"]) and r["input_size"] == 64
        assert r["ms_median"] > 0 and r["size_bytes"] == files["int8"].stat().st_size
        assert r["ratio_vs_eager"] is None


def test_bench_of_a_checkpoint_still_compares_backends(cli, files):
    done = cli("bench", files["pt"], "--batch-size", "1", "--backends", "eager,ort_fp32", "--min-seconds", "0.05",
               "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["backend"] for r in rows] == ["eager", "ort_fp32"] and rows[0]["input_size"] == 64
    assert rows[0]["ratio_vs_eager"] == 1.0 and rows[1]["ratio_vs_eager"] > 0


def test_load_predictor_is_a_public_name(files):
    assert "load_predictor" in squeezelab.__all__
    predictor = squeezelab.load_predictor(files["int8"])
    assert predictor.classes == CLASSES and predictor.kind == "onnx"
    assert predictor.predict_logits(torch.zeros(2, 3, 64, 64)).shape == (2, 3)
