"""Which int8 path to ship: PyTorch's FX int8 (x86 backend) vs ONNX Runtime's, same model, one run.

Prints batch-1 and batch-32 medians for PyTorch eager fp32, PyTorch FX int8 (`quantize_fx` with the
x86 qconfig), ONNX Runtime fp32 and ONNX Runtime int8 (QDQ U8S8), each with its ratio to eager.
`--threads 1` (default) keeps the ratios stable on a shared machine: with 2 threads and other
processes on the 2 cores, PyTorch's OpenMP barriers can make a call 50x slower.

    python bench/int8_paths.py [--threads 1] [--model squeezenet1_1]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import torch

import squeezelab
from squeezelab.export.int8 import quantize_int8
from squeezelab.export.onnx import export_onnx, make_session
from squeezelab.utils.timing import format_speed_table, time_call


def fx_int8(model: torch.nn.Module, calibration: list[torch.Tensor]) -> torch.nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    # trace features + classifier: forward_features has input-size checks that FX cannot trace
    plain = torch.nn.Sequential(model.features, model.classifier, torch.nn.Flatten()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(plain, get_default_qconfig_mapping("x86"), (calibration[0],))
        with torch.no_grad():
            for batch in calibration:
                prepared(batch)
        return convert_fx(prepared)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="squeezenet1_1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = squeezelab.create_model(args.model, final_relu=False).eval()
    calibration = [torch.randn(8, 3, 224, 224) for _ in range(4)]  # speed only: values do not matter
    quantized = fx_int8(model, calibration)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32_file, int8_file = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        export_onnx(model, fp32_file, dynamic_batch=True)
        quantize_int8(fp32_file, int8_file, calibration)
        sessions = {"ort_fp32": make_session(fp32_file, args.threads), "ort_int8": make_session(int8_file, args.threads)}
        for batch in (1, 32):
            x = torch.randn(batch, 3, 224, 224)
            runs = {"eager": lambda: model(x), "torch_fx_int8": lambda: quantized(x),
                    **{name: (lambda s=s: s.run(None, {"input": x.numpy()})) for name, s in sessions.items()}}
            eager = None
            for name, run in runs.items():
                with torch.inference_mode():
                    timing = time_call(run, min_seconds=args.min_seconds, min_runs=3)
                eager = eager or timing.ms_median
                rows.append({"model": args.model, "backend": name, "batch": batch, "ms_median": timing.ms_median,
                             "ms_p90": timing.ms_p90, "images_per_s": batch * 1e3 / timing.ms_median,
                             "ratio_vs_eager": eager / timing.ms_median})
    print(format_speed_table(rows))
    for batch in (1, 32):
        med = {r["backend"]: r["ms_median"] for r in rows if r["batch"] == batch}
        print(f"batch {batch}: ONNX Runtime int8 is {med['torch_fx_int8'] / med['ort_int8']:.2f}x as fast as "
              f"PyTorch FX int8 and {med['ort_fp32'] / med['ort_int8']:.2f}x ONNX Runtime fp32")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
