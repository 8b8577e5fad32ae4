"""`export_model`: a model in memory -> a checked ONNX, OpenVINO, ncnn, ExecuTorch, LiteRT or Core
ML file, and optionally an int8 copy with its top-1 agreement, measured on the calibration images
(held-out ones for the phone formats) (what `squeezelab export` runs)."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from squeezelab.errors import SqueezelabError
from squeezelab.export.calibration import calibration_batches
from squeezelab.export.config import EXPORT_FORMATS, EXPORT_SUFFIXES, MOBILE_FORMATS
from squeezelab.export.int8 import DEFAULT_FORMAT, quantize_int8, top1_agreement
from squeezelab.export.onnx import DEFAULT_OPSET, export_onnx

FORMATS, SUFFIXES = EXPORT_FORMATS, EXPORT_SUFFIXES


def format_for(output: str | os.PathLike, format: str | None) -> str:
    """The export format: as asked, else from the output's suffix (.xml, .pte, ...), else ONNX."""
    if format is None:
        return SUFFIXES.get(Path(output).suffix.lower(), "onnx")
    if format not in FORMATS:
        raise SqueezelabError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    return format


def int8_path_for(output: str | os.PathLike) -> str:
    """model.onnx -> model.int8.onnx"""
    return str(Path(output).with_suffix("")) + ".int8.onnx"


def export_model(model: nn.Module, output: str | os.PathLike, *, opset: int = DEFAULT_OPSET,
                 dynamic_batch: bool = False, input_size: int | None = None, int8: bool = False,
                 calib_data: str | os.PathLike | None = None, calib_images: int = 256,
                 int8_format: str = DEFAULT_FORMAT, int8_output: str | os.PathLike | None = None,
                 format: str | None = None) -> dict:
    """Write `model` (with its `.record`, as `squeezelab.load_model` returns it) to `output`.

    With `calib_data` (real images: a folder or a data spec) the ONNX file is checked against
    PyTorch on them, and `int8` writes `int8_output` (default: OUTPUT.int8.onnx) calibrated on them.
    Returns {"onnx": ExportReport dict, "int8": Int8Report dict + top-1 agreement (with `int8`)}.
    `format` "openvino" (OUTPUT.xml, int8 through NNCF as OUTPUT.int8.xml) and "ncnn"
    (OUTPUT.param, fp32) go to `export_runtime`; "executorch" (.pte), "litert" (.tflite) and
    "coreml" (.mlpackage) to `export_mobile`.

    >>> export_model(squeezelab.load_model("best.pt"), "model.onnx", int8=True, calib_data="digits")  # doctest: +SKIP
    """
    if int8 and not calib_data:
        raise SqueezelabError("--int8 needs --calib-data SPEC: real images to calibrate on (random tensors mis-set the ranges)")
    format = format_for(output, format)
    if format in MOBILE_FORMATS:
        return export_mobile(model, output, format, input_size=input_size, calib_data=calib_data,
                             calib_images=calib_images, int8=int8, int8_output=int8_output)
    calibration = calibration_batches(calib_data, model.record.preprocessing, limit=calib_images) if calib_data else None
    if format != "onnx":
        return export_runtime(model, output, format, input_size=input_size, calibration=calibration, int8=int8,
                              int8_output=int8_output)
    report = {"onnx": export_onnx(model, output, opset=opset, dynamic_batch=dynamic_batch, input_size=input_size,
                                  check_inputs=calibration[0] if calibration else None).to_dict()}
    if int8:
        out = str(int8_output or int8_path_for(output))
        report["int8"] = {**quantize_int8(output, out, calibration, format=int8_format).to_dict(),
                          **top1_agreement(output, out, calibration)}
    return report


def export_runtime(model: nn.Module, output: str | os.PathLike, format: str, *, input_size: int | None = None,
                   calibration: list | None = None, int8: bool = False,
                   int8_output: str | os.PathLike | None = None) -> dict:
    """OpenVINO IR or ncnn files, each checked against PyTorch on the calibration images:
    {"openvino"|"ncnn": report, "int8": report (OpenVINO with `int8`)}."""
    if format == "ncnn":
        if int8:
            raise SqueezelabError("ncnn int8 needs ncnn's own C++ tools (ncnn2table, ncnn2int8); "
                                  "export fp32 ncnn, or int8 with --format onnx or openvino")
        from squeezelab.export.ncnn import export_ncnn

        return {"ncnn": export_ncnn(model, output, input_size=input_size, check_inputs=calibration)}
    from squeezelab.export.openvino import export_openvino, int8_xml_path, quantize_openvino

    report = {"openvino": export_openvino(model, output, input_size=input_size, check_inputs=calibration)}
    if int8:
        report["int8"] = quantize_openvino(model, output, int8_output or int8_xml_path(output), calibration)
    return report


def export_mobile(model: nn.Module, output: str | os.PathLike, format: str, *, input_size: int | None = None,
                  calib_data: str | os.PathLike | None = None, calib_images: int = 256, int8: bool = False,
                  int8_output: str | os.PathLike | None = None) -> dict:
    """An ExecuTorch, LiteRT or Core ML file: {"executorch"|"litert"|"coreml": report, "int8": report}.

    Each file is run by its own runtime and compared with PyTorch on the calibration images (Core
    ML, which cannot run on Linux, has its spec checked instead). For int8, twice `calib_images`
    images are read: the first `calib_images` set the ranges, the rest are held out to measure
    top-1 agreement with fp32 PyTorch.
    """
    from squeezelab.export.mobile import split_calibration

    if format == "coreml":
        if int8:
            raise SqueezelabError("Core ML int8 is not checked here (it cannot run on Linux); export fp32 Core ML, "
                                  "or int8 with --format executorch or litert")
        from squeezelab.export.coreml import export_coreml

        return {"coreml": export_coreml(model, output, input_size=input_size)}
    if format == "executorch":
        from squeezelab.export.executorch import export_executorch as export, int8_pte_path as int8_path
        from squeezelab.export.executorch import quantize_executorch as quantize
    else:
        from squeezelab.export.litert import export_litert as export, int8_tflite_path as int8_path
        from squeezelab.export.litert import quantize_litert as quantize
    preprocessing = model.record.preprocessing
    batches = calibration_batches(calib_data, preprocessing, limit=calib_images * (2 if int8 else 1)) if calib_data else None
    report = {format: export(model, output, input_size=input_size, check_inputs=batches)}
    if int8:
        calibration, held_out, name = split_calibration(batches, calib_images)
        report["int8"] = quantize(model, int8_output or int8_path(output), calibration, held_out,
                                  input_size=input_size, held_out_name=name)
    return report
