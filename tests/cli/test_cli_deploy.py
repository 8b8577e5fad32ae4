"""`squeezelab export`, `bench` and `serve` through the command's own entry point."""

import json

import numpy as np
import pytest
from helpers import one_line_error, write_small_checkpoint
from PIL import Image


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deploy")
    path = write_small_checkpoint(tmp / "model.pt", ["a", "b", "c"])
    images = tmp / "images"
    rng = np.random.default_rng(0)
    for i in range(12):
        (images / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(images / f"c{i % 3}" / f"{i}.png")
    return path, images


def test_export_writes_a_checked_onnx_and_int8(cli, checkpoint, tmp_path):
    path, images = checkpoint
    out = tmp_path / "model.onnx"
    result = cli("export", str(path), "-o", str(out), "--opset", "13", "--dynamic-batch", "--int8",
                 "--calib-data", str(images), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["onnx"]["max_abs_diff"] < 1e-4 and report["onnx"]["opset"] == 13
    int8 = report["int8"]
    assert int8["calibration_images"] == int8["images"] == 12
    # agreement is a count of the 12 images on which int8 and fp32 pick the same class
    assert int8["top1_agreement"] * 12 == pytest.approx(round(int8["top1_agreement"] * 12))
    assert int8["top1_agreement"] >= 0.5 and int8["size_bytes"] < 0.4 * report["onnx"]["size_bytes"]
    assert out.exists() and (tmp_path / "model.int8.onnx").exists()
    text = cli("export", str(path), "-o", str(tmp_path / "b.onnx"))
    assert text.returncode == 0 and "onnx.checker passed" in text.stdout and "max abs diff" in text.stdout


def test_export_errors_are_one_line_exit_2(cli, checkpoint, tmp_path):
    path, _ = checkpoint
    for args, words in [((str(path), "-o", str(tmp_path / "x.onnx"), "--int8"), "--calib-data"),
                        ((str(tmp_path / "missing.pt"), "-o", str(tmp_path / "x.onnx")), "does not exist"),
                        ((str(path), "-o", str(tmp_path / "x.onnx"), "--opset", "7"), "opset")]:
        one_line_error(cli("export", *args), words)
    assert not (tmp_path / "x.onnx").exists()


def test_bench_json_has_ms_median_and_ratio_vs_eager(cli):
    result = cli("bench", "squeezenet1_1", "--batch", "1", "--input-size", "48", "--json", "--min-seconds", "0.05")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    backends = [r["backend"] for r in rows]
    assert backends == ["eager", "channels_last", "ort_fp32", "ort_int8", "openvino_fp32", "openvino_int8", "ncnn_fp32"]
    for r in rows:
        assert r["model"] == "squeezenet1_1" and r["batch"] == 1 and r["ms_median"] > 0 and r["ratio_vs_eager"] > 0
        assert {"ms_p90", "images_per_s", "size_bytes"} <= set(r)
    assert rows[0]["ratio_vs_eager"] == 1.0


def test_bench_table_and_bad_batch(cli):
    result = cli("bench", "squeezenet1_1", "--batch", "2", "--input-size", "48", "--backends", "eager,ort_fp32",
                 "--min-seconds", "0.05")
    assert result.returncode == 0 and "vs eager" in result.stdout and "ort_fp32" in result.stdout
    one_line_error(cli("bench", "--batch", "one"), "--batch")


def test_serve_refuses_a_bad_model_file_in_one_line(cli, tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    one_line_error(cli("serve", str(tmp_path / "junk.onnx")), "not a readable ONNX file")


def test_serve_binds_to_localhost_by_default():
    from squeezelab.cli import build_parser

    args = build_parser().parse_args(["serve", "m.onnx"])
    assert args.host == "127.0.0.1" and args.port == 8000
