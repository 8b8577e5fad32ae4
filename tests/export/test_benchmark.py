import sys

import pytest

from squeezelab.errors import SqueezelabError
from squeezelab.export.benchmark import benchmark, ratio


def test_benchmark_rows_carry_the_documented_keys_and_ratios():
    rows = benchmark(["squeezenet1_1"], batches=[1, 2], input_size=48, backends=["eager", "channels_last", "ort_fp32"],
                     min_seconds=0.05)
    assert [(r["backend"], r["batch"]) for r in rows] == [
        ("eager", 1), ("channels_last", 1), ("ort_fp32", 1), ("eager", 2), ("channels_last", 2), ("ort_fp32", 2)]
    for r in rows:
        assert r["ms_median"] > 0 and r["ms_p90"] >= r["ms_median"] and r["size_bytes"] > 1_000_000
        assert r["images_per_s"] == pytest.approx(r["batch"] * 1e3 / r["ms_median"])
    eager = rows[0]["ms_median"]
    assert rows[0]["ratio_vs_eager"] == 1.0
    assert rows[2]["ratio_vs_eager"] == pytest.approx(eager / rows[2]["ms_median"], rel=1e-2)
    assert ratio(rows, "squeezenet1_1", 1, "ort_fp32", "eager") == pytest.approx(rows[2]["ratio_vs_eager"], rel=1e-2)


def test_unknown_backend_and_model_are_clear_errors():
    with pytest.raises(SqueezelabError, match="backend"):
        benchmark(["squeezenet1_1"], backends=["tensorrt"])
    with pytest.raises(SqueezelabError, match="unknown model"):
        benchmark(["squeezenet9"], backends=["eager"])


def test_runtime_rows_time_openvino_and_ncnn_and_a_missing_runtime_is_its_rows_error(monkeypatch):
    pytest.importorskip("openvino")
    pytest.importorskip("ncnn")
    rows = benchmark(["squeezenet1_1"], batches=[2], input_size=32, backends=["ncnn_fp32", "openvino_fp32"],
                     min_seconds=0.01)
    assert [(r["backend"], r["input_size"]) for r in rows] == [("eager", 32), ("ncnn_fp32", 32), ("openvino_fp32", 32)]
    assert all(r["ms_median"] > 0 and r["size_bytes"] > 1e6 for r in rows[1:])
    monkeypatch.setitem(sys.modules, "openvino", None)
    rows = benchmark(["squeezenet1_1"], batches=[1], input_size=32, backends=["openvino_int8"], min_seconds=0.01)
    assert "ms_median" in rows[0] and "squeezelab[deploy]" in rows[1]["error"]
