"""`export_model`: a model in memory -> a checked ONNX file, and optionally an int8 copy with its
top-1 agreement against the fp32 file, measured on the calibration images (what `squeezelab
export` runs)."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from squeezelab.errors import SqueezelabError
from squeezelab.export.calibration import calibration_batches
from squeezelab.export.int8 import DEFAULT_FORMAT, quantize_int8, top1_agreement
from squeezelab.export.onnx import DEFAULT_OPSET, export_onnx


def int8_path_for(output: str | os.PathLike) -> str:
    """model.onnx -> model.int8.onnx"""
    return str(Path(output).with_suffix("")) + ".int8.onnx"


def export_model(model: nn.Module, output: str | os.PathLike, *, opset: int = DEFAULT_OPSET,
                 dynamic_batch: bool = False, input_size: int | None = None, int8: bool = False,
                 calib_data: str | os.PathLike | None = None, calib_images: int = 256,
                 int8_format: str = DEFAULT_FORMAT, int8_output: str | os.PathLike | None = None) -> dict:
    """Write `model` (with its `.record`, as `squeezelab.load_model` returns it) to `output`.

    With `calib_data` (real images: a folder or a data spec) the ONNX file is checked against
    PyTorch on them, and `int8` writes `int8_output` (default: OUTPUT.int8.onnx) calibrated on them.
    Returns {"onnx": ExportReport dict, "int8": Int8Report dict + top-1 agreement (with `int8`)}.

    >>> export_model(squeezelab.load_model("best.pt"), "model.onnx", int8=True, calib_data="digits")  # doctest: +SKIP
    """
    if int8 and not calib_data:
        raise SqueezelabError("--int8 needs --calib-data SPEC: real images to calibrate on (random tensors mis-set the ranges)")
    calibration = calibration_batches(calib_data, model.record.preprocessing, limit=calib_images) if calib_data else None
    report = {"onnx": export_onnx(model, output, opset=opset, dynamic_batch=dynamic_batch, input_size=input_size,
                                  check_inputs=calibration[0] if calibration else None).to_dict()}
    if int8:
        out = str(int8_output or int8_path_for(output))
        report["int8"] = {**quantize_int8(output, out, calibration, format=int8_format).to_dict(),
                          **top1_agreement(output, out, calibration)}
    return report
