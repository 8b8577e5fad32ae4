"""OpenVINO IR export (fp32, and int8 through NNCF post-training quantization) and opening IR files.

OpenVINO is the runtime of Intel CPUs: on a 2-core AVX-512 VNNI machine its NNCF int8 SqueezeNet
ran 1.5x ONNX Runtime fp32 at batch 1 (bench/runtimes.py). The IR is converted from the same
ONNX graph `export_onnx` writes (one tracing path for every format), saved with fp32 weights
(OpenVINO's default halves them to fp16) and run with fp32 inference precision (its default on
bf16-capable CPUs is bf16), so the logits match PyTorch's within 1e-4. The model record travels in
the IR's runtime info (rt_info, under "squeezelab"), as JSON strings like the ONNX metadata, so an
.xml/.bin pair serves on its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from squeezelab.errors import BadFileError, SqueezelabError
from squeezelab.export.check import claim_weights_file, compare_with_torch, import_runtime, seeded_inputs
from squeezelab.export.config import DEFAULT_OPSET
from squeezelab.export.onnx import (META_PREFIX, _record_from_metadata, _to_onnx_bytes, image_batch, metadata_for,
                                    model_input_size)
from squeezelab.models.record import ModelRecord

RT_SECTION = "squeezelab"
MAX_COMPILED = 4  # compiled models kept per file, one per batch size seen


def _ov(purpose: str = "OpenVINO export"):
    return import_runtime("openvino", purpose)


def int8_xml_path(output: str | os.PathLike) -> str:
    """model.xml -> model.int8.xml"""
    return str(Path(output).with_suffix("")) + ".int8.xml"


def _save_ir(ov_model, path: Path) -> int:
    """Write path (.xml) and its .bin atomically (the .bin first, so a reader never finds an .xml
    without its weights); returns the .bin size."""
    ov = _ov()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".squeezelab-ir-", dir=path.parent) as tmp:
        xml = Path(tmp) / path.name
        ov.save_model(ov_model, str(xml), compress_to_fp16=False)
        os.replace(xml.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(xml, path)
    return path.with_suffix(".bin").stat().st_size


def _set_record(ov_model, metadata: dict[str, str]) -> None:
    for key, value in metadata.items():
        ov_model.set_rt_info(value, [RT_SECTION, key[len(META_PREFIX):]])


def _compile(ov_model, threads: int | None, batch: int):
    """A CPU-compiled copy of the model for one batch size, in fp32 precision, tuned for latency."""
    ov = _ov()
    model = ov_model.clone()
    shape = list(model.input(0).get_partial_shape())
    model.reshape([batch, *[int(d.get_length()) for d in shape[1:]]])
    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return ov.Core().compile_model(model, "CPU", config)


@dataclasses.dataclass
class OpenVinoModel:
    """An IR classifier run by OpenVINO on the CPU; call it with a float32 batch (N, 3, H, W)."""

    path: Path
    model: object  # openvino.Model
    record: ModelRecord
    num_params: int | None
    threads: int | None = None
    compiled: dict = dataclasses.field(default_factory=dict)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = image_batch(batch)
        n = len(batch)
        if n not in self.compiled:
            if len(self.compiled) >= MAX_COMPILED:
                self.compiled.pop(next(iter(self.compiled)))
            self.compiled[n] = _compile(self.model, self.threads, n)
        compiled = self.compiled[n]
        return np.array(compiled(batch)[compiled.output(0)], dtype=np.float32)


def export_openvino(model: nn.Module, path: str | os.PathLike, *, input_size: int | None = None,
                    check_inputs: list[torch.Tensor] | None = None) -> dict:
    """Write `model` (with its `.record`) as OpenVINO IR (`path`.xml + .bin, fp32), checked against
    PyTorch on `check_inputs` (real preprocessed batches; seeded random ones without them)."""
    ov = _ov()
    path = Path(path)
    if path.suffix.lower() != ".xml":
        raise SqueezelabError(f"an OpenVINO model is an .xml file (with its .bin beside it); got -o {path}")
    claim_weights_file(path, ".param")
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    size = input_size or model_input_size(model)
    with tempfile.TemporaryDirectory(prefix="squeezelab-ov-") as tmp:
        onnx_file = Path(tmp) / "model.onnx"
        onnx_file.write_bytes(_to_onnx_bytes(model, torch.zeros(1, 3, size, size), DEFAULT_OPSET, False))
        ov_model = ov.convert_model(str(onnx_file))
    _set_record(ov_model, metadata_for(model, size))
    checked = compare_with_torch(model, OpenVinoModel(path, ov_model, None, None),
                                 check_inputs or seeded_inputs(size), "given" if check_inputs else "seeded random")
    bin_size = _save_ir(ov_model, path)
    return {"path": str(path), "format": "openvino", "precision": "fp32", "input_size": size,
            "size_bytes": path.stat().st_size + bin_size, **checked}


def quantize_openvino(model: nn.Module, fp32_path: str | os.PathLike, out_path: str | os.PathLike,
                      calibration: list[torch.Tensor]) -> dict:
    """Write an int8 IR of the fp32 IR at `fp32_path` (NNCF post-training quantization, calibrated
    on the real-image batches `calibration`), checked against the torch `model` on the same images."""
    ov = _ov()
    claim_weights_file(Path(out_path), ".param")
    with _quiet_nncf():
        nncf = import_runtime("nncf", "OpenVINO int8 export")
    if not calibration:
        raise SqueezelabError("int8 calibration needs at least one real image; pass --calib-data")
    fp32 = ov.Core().read_model(str(fp32_path))
    images = [image[None].numpy() for batch in calibration for image in batch]  # the IR takes batch 1
    with _quiet_nncf():  # the full bias correction: 95% top-1 agreement against 89% with the fast one on a 16 px model
        int8 = nncf.quantize(fp32, nncf.Dataset(images), subset_size=len(images), fast_bias_correction=False)
    int8.set_rt_info('"nncf"', [RT_SECTION, "int8_format"])
    out_path = Path(out_path)
    checked = compare_with_torch(model, OpenVinoModel(out_path, int8, None, None), calibration, "calibration")
    bin_size = _save_ir(int8, out_path)
    return {"path": str(out_path), "format": "openvino", "precision": "int8", "calibration_images": len(images),
            "size_bytes": out_path.stat().st_size + bin_size, **checked}


@contextlib.contextmanager
def _quiet_nncf():
    """NNCF draws progress bars and logs statistics, and importing it makes torch warn about CUDA;
    keep them all off the user's screen."""
    loggers = [logging.getLogger(name) for name in ("nncf", "torch.utils.cpp_extension")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def load_openvino(path: str | os.PathLike, *, threads: int | None = None) -> OpenVinoModel:
    """Open an IR written by `export_openvino` (or any 1-input image classifier IR)."""
    ov = _ov("opening an OpenVINO model")
    path = Path(path)
    if not path.with_suffix(".bin").is_file():
        raise SqueezelabError(f"{path}: its weights {path.with_suffix('.bin').name} are missing beside it")
    try:
        ov_model = ov.Core().read_model(str(path))
    except Exception as exc:
        raise BadFileError(f"{path} is not a readable OpenVINO IR ({str(exc).splitlines()[0][:120]})") from None
    if len(ov_model.inputs) != 1 or len(ov_model.outputs) != 1:
        raise BadFileError(f"{path} has {len(ov_model.inputs)} inputs and {len(ov_model.outputs)} outputs; "
                           "expected one image input and one logits output")
    dims = [d.get_length() if d.is_static else None for d in ov_model.input(0).get_partial_shape()]
    out_dims = [d.get_length() if d.is_static else None for d in ov_model.output(0).get_partial_shape()]
    if len(dims) != 4 or dims[1] != 3 or len(out_dims) != 2:
        raise BadFileError(f"{path}: expected input (N, 3, H, W) and output (N, classes), got {dims} and {out_dims}")
    props = _rt_props(ov_model)
    record = _record_from_metadata(path, props, dims, out_dims)
    num_params = props.get(META_PREFIX + "num_params")
    opened = OpenVinoModel(path, ov_model, record, int(num_params) if num_params and num_params.isdigit() else None,
                           threads)
    opened.compiled[1] = _compile(ov_model, threads, 1)  # batch 1 ready: a served first request waits for no compile
    return opened


def _rt_props(ov_model) -> dict[str, str]:
    """The record's JSON strings from rt_info, keyed like the ONNX metadata ('squeezelab.classes')."""
    if not ov_model.has_rt_info([RT_SECTION]):
        return {}
    section = ov_model.get_rt_info([RT_SECTION])
    keys = section.astype(dict).keys() if hasattr(section, "astype") else section.keys()
    return {META_PREFIX + key: str(ov_model.get_rt_info([RT_SECTION, key]).astype(str)) for key in keys}
