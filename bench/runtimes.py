"""Every deployment runtime on one model in one run: PyTorch eager, ONNX Runtime fp32, OpenVINO fp32,
ncnn fp32, ONNX Runtime int8 as plain static QDQ (S8S8, its documented default), squeezelab's
ONNX Runtime int8 (QDQ U8S8, 7-bit weights) and OpenVINO int8 (NNCF), each as a ratio to ONNX
Runtime fp32. Two more rows show ONNX Runtime with its spinning worker threads (its default, off
in squeezelab's sessions).

Backends are interleaved: each round times every backend for `--round-seconds`, in turn, and the
table shows the median over rounds of each backend's per-round median, so a burst of load from
another process lands on all of them alike. Speed does not depend on the weights: random ones,
with int8 calibrated on seeded random inputs (accuracy is `squeezelab export`'s and
bench/inference.py's job).

    python bench/runtimes.py [--model squeezenet1_1] [--batch 1,32] [--threads 2] [--rounds 9]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

import squeezelab
from squeezelab.export.int8 import quantize_int8
from squeezelab.export.ncnn import export_ncnn, load_ncnn
from squeezelab.export.onnx import export_onnx, make_session
from squeezelab.export.openvino import export_openvino, load_openvino, quantize_openvino
from squeezelab.utils.timing import time_call

ROWS = [("eager", "PyTorch eager fp32"), ("ort_fp32", "ONNX Runtime fp32"), ("openvino_fp32", "OpenVINO fp32"),
        ("ncnn_fp32", "ncnn fp32 (pnnx)"), ("ort_int8_plain", "ONNX Runtime int8, plain static QDQ (S8S8)"),
        ("ort_int8", "squeezelab int8 (ONNX Runtime, QDQ U8S8)"), ("openvino_int8", "OpenVINO int8 (NNCF)"),
        ("ort_int8_spinning", "squeezelab int8, ONNX Runtime's spinning threads"),
        ("ort_fp32_spinning", "ONNX Runtime fp32, spinning threads")]


def runners(model: torch.nn.Module, size: int, threads: int, tmp: Path) -> dict:
    """backend -> callable(array) for every row, built once."""
    generator = torch.Generator().manual_seed(0)
    calibration = [torch.randn(8, 3, size, size, generator=generator) for _ in range(4)]
    export_onnx(model, tmp / "fp32.onnx", dynamic_batch=True, input_size=size)
    quantize_int8(tmp / "fp32.onnx", tmp / "plain.onnx", calibration, format="qdq_s8s8", share_concat_scales=False)
    quantize_int8(tmp / "fp32.onnx", tmp / "int8.onnx", calibration)
    export_openvino(model, tmp / "fp32.xml", input_size=size)
    quantize_openvino(model, tmp / "fp32.xml", tmp / "int8.xml", calibration)
    export_ncnn(model, tmp / "ncnn.param", input_size=size)

    def ort(path, spinning=False):
        session = make_session(path, threads, spinning=spinning)
        return lambda a: session.run(None, {"input": a})

    def eager(a):
        with torch.inference_mode():
            return model(torch.from_numpy(a))

    return {"eager": eager, "ort_fp32": ort(tmp / "fp32.onnx"), "openvino_fp32": load_openvino(tmp / "fp32.xml", threads=threads),
            "ncnn_fp32": load_ncnn(tmp / "ncnn.param", threads=threads), "ort_int8_plain": ort(tmp / "plain.onnx"),
            "ort_int8": ort(tmp / "int8.onnx"), "openvino_int8": load_openvino(tmp / "int8.xml", threads=threads),
            "ort_int8_spinning": ort(tmp / "int8.onnx", True), "ort_fp32_spinning": ort(tmp / "fp32.onnx", True)}


def measure(run: dict, batch: int, size: int, rounds: int, seconds: float) -> dict[str, float]:
    x = torch.randn(batch, 3, size, size).numpy()
    per_round: dict[str, list[float]] = {name: [] for name in run}
    for _ in range(rounds):
        for name, fn in run.items():
            per_round[name].append(time_call(lambda: fn(x), warmup=1, min_runs=3, min_seconds=seconds).ms_median)
    return {name: statistics.median(values) for name, values in per_round.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="squeezenet1_1")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--batch", default="1", help="comma-separated batch sizes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--round-seconds", type=float, default=0.3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = squeezelab.create_model(args.model).eval()
    with tempfile.TemporaryDirectory(prefix="squeezelab-runtimes-") as tmp:
        run = runners(model, args.input_size, args.threads, Path(tmp))
        for batch in [int(b) for b in args.batch.split(",")]:
            ms = measure(run, batch, args.input_size, args.rounds, args.round_seconds)
            print(f"\n{args.model}, {args.input_size}x{args.input_size}, batch {batch}, {args.threads} threads, "
                  f"interleaved, median of {args.rounds} rounds\n")
            print("| backend | ms | vs ONNX Runtime fp32 |\n|---|---|---|")
            for key, label in ROWS:
                print(f"| {label} | {ms[key]:.2f} | {ms['ort_fp32'] / ms[key]:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
