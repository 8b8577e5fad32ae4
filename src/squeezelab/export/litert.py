"""LiteRT export (.tflite, converted by litert-torch; int8 through LiteRT's PT2E full-integer
quantization) and opening .tflite files with LiteRT's own interpreter (`ai-edge-litert`).

LiteRT (formerly TensorFlow Lite) is Android's built-in inference runtime. litert-torch converts
the `torch.export` graph of the eval model at batch 1 straight to a .tflite flatbuffer, with no
TensorFlow in between, keeping the NCHW float input the other exports take. The int8 model is
full-integer: litert-torch's PT2EQuantizer (symmetric per-channel weights, static per-tensor
activations, calibrated on real images) quantizes every operator, inputs and outputs included,
so the file's input and output tensors are int8 with a scale and zero point, which `LiteRtModel`
applies, as an app does. Each file is run here by the LiteRT interpreter (with its XNNPACK
delegate, as on a phone) right after it is written and compared with PyTorch; its record travels
in `m.tflite.json` (export/sidecar.py).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from squeezelab.errors import BadFileError, SqueezelabError
from squeezelab.export.check import compare_with_torch, seeded_inputs
from squeezelab.export.mobile import export_program, first_line, import_mobile, pt2e_quantize, quiet
from squeezelab.export.onnx import image_batch, metadata_for, model_input_size
from squeezelab.export.sidecar import read_sidecar, sidecar_path, write_sidecar
from squeezelab.model_files import Predictor, register_predictor_loader
from squeezelab.models.record import ModelRecord
from squeezelab.utils.atomic import atomic_write_bytes

SUFFIX = ".tflite"
MAX_TFLITE_BYTES = 512 * 2**20


def int8_tflite_path(output: str | os.PathLike) -> str:
    """model.tflite -> model.int8.tflite"""
    return str(Path(output).with_suffix("")) + ".int8.tflite"


def _convert(model: nn.Module, sample: torch.Tensor, what: str, quant_config=None) -> bytes:
    """The .tflite bytes litert-torch converts `model` (a module or a PT2E graph) to."""
    litert_torch = import_mobile("litert_torch", what)
    try:
        with quiet(), tempfile.TemporaryDirectory(prefix="squeezelab-litert-") as tmp:
            converted = litert_torch.convert(model, (sample,), quant_config=quant_config)
            converted.export(str(Path(tmp) / "model.tflite"))
            return (Path(tmp) / "model.tflite").read_bytes()
    except SqueezelabError:
        raise
    except Exception as exc:
        raise SqueezelabError(f"{what} failed: {first_line(exc)}") from None


def _interpreter(model: bytes | Path, threads: int | None = None):
    interpreter = import_mobile("ai_edge_litert.interpreter", "running a LiteRT model")
    with quiet():
        if isinstance(model, bytes):
            opened = interpreter.Interpreter(model_content=model, num_threads=threads)
        else:
            opened = interpreter.Interpreter(model_path=str(model), num_threads=threads)
        opened.allocate_tensors()
    return opened


@dataclasses.dataclass
class LiteRtModel:
    """A .tflite classifier run by the LiteRT interpreter; call it with a float32 batch
    (N, 3, H, W). An int8 model's quantized input and output are (de)quantized here."""

    path: Path | None
    interpreter: object  # ai_edge_litert.interpreter.Interpreter, input (1, 3, H, W)
    record: ModelRecord | None
    num_params: int | None

    def __post_init__(self):
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = image_batch(batch)
        expected = tuple(int(d) for d in self.input["shape"][1:])
        if tuple(batch.shape[1:]) != expected:
            raise SqueezelabError(f"this LiteRT model takes images of shape {expected}, got {tuple(batch.shape[1:])}")
        outputs = []
        for image in batch:
            self.interpreter.set_tensor(self.input["index"], _quantize(image[None], self.input))
            self.interpreter.invoke()
            outputs.append(_dequantize(self.interpreter.get_tensor(self.output["index"]), self.output))
        return np.concatenate(outputs)


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """A float input in the tensor's dtype: q = round(x / scale) + zero_point for an int8 input."""
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return x
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]) == np.float32:
        return y.copy()
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)


def _report(model, data: bytes, path: Path, precision: str, size: int, batches, what: str) -> dict:
    """Write the model (atomically, with its sidecar) after it matched PyTorch on `batches`."""
    runner = LiteRtModel(None, _interpreter(data), None, None)
    checked = compare_with_torch(model, runner, batches, what)
    atomic_write_bytes(path, data)
    write_sidecar(path, metadata_for(model, size), runtime="litert", precision=precision,
                  input_shape=[int(d) for d in runner.input["shape"]],
                  output_shape=[int(d) for d in runner.output["shape"]])
    return {"path": str(path), "format": "litert", "precision": precision, "input_size": size,
            "size_bytes": len(data), "sidecar": str(sidecar_path(path)), **checked}


def export_litert(model: nn.Module, path: str | os.PathLike, *, input_size: int | None = None,
                  check_inputs: list[torch.Tensor] | None = None) -> dict:
    """Write `model` (with its `.record`) as an fp32 .tflite, checked against PyTorch by the LiteRT
    interpreter on `check_inputs` (seeded random ones without them).

    >>> export_litert(squeezelab.load_model("best.pt"), "m.tflite")["max_abs_diff"] < 1e-4  # doctest: +SKIP
    True
    """
    path = _tflite(path)
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    size = input_size or model_input_size(model)
    sample = torch.zeros(1, 3, size, size)
    export_program(model, sample)  # a model torch.export cannot trace gets its one line here
    data = _convert(model, sample, "LiteRT export")
    return _report(model, data, path, "fp32", size, check_inputs or seeded_inputs(size),
                   "given" if check_inputs else "seeded random")


def quantize_litert(model: nn.Module, path: str | os.PathLike, calibration: list[torch.Tensor],
                    held_out: list[torch.Tensor], *, input_size: int | None = None,
                    held_out_name: str = "held-out") -> dict:
    """Write a full-integer int8 .tflite: litert-torch's PT2E quantizer calibrated on
    `calibration`, its top-1 agreement with PyTorch fp32 measured on `held_out`."""
    path = _tflite(path)
    pt2e = import_mobile("litert_torch.quantize.pt2e_quantizer", "LiteRT int8 export")
    quant_config = import_mobile("litert_torch.quantize.quant_config", "LiteRT int8 export")
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    size = input_size or model_input_size(model)
    sample = torch.zeros(1, 3, size, size)
    quantizer = pt2e.PT2EQuantizer().set_global(
        pt2e.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    converted = pt2e_quantize(model, quantizer, calibration, sample, fold_quantize=False)
    data = _convert(converted, sample, "LiteRT int8 export", quant_config.QuantConfig(pt2e_quantizer=quantizer))
    report = _report(model, data, path, "int8", size, held_out, held_out_name)
    return {**report, "calibration_images": sum(len(b) for b in calibration)}


def _tflite(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() != SUFFIX:
        raise SqueezelabError(f"a LiteRT model is a .tflite file; got -o {path}")
    return path


def load_litert(path: str | os.PathLike, *, threads: int | None = None) -> LiteRtModel:
    """Open a .tflite written by `export_litert` (or any 1-input image classifier)."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0 or size > MAX_TFLITE_BYTES:
        raise BadFileError(f"{path} is {size} bytes; a LiteRT model must be between 1 byte and {MAX_TFLITE_BYTES} bytes")
    try:
        interpreter = _interpreter(path, threads)
    except SqueezelabError:
        raise
    except Exception as exc:
        raise BadFileError(f"{path} is not a loadable LiteRT model ({first_line(exc)})") from None
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise BadFileError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; "
                           "expected one image input and one logits output")
    dims, out_dims = [int(d) for d in inputs[0]["shape"]], [int(d) for d in outputs[0]["shape"]]
    if len(dims) != 4 or dims[1] != 3 or len(out_dims) != 2:
        raise BadFileError(f"{path}: expected input (1, 3, H, W) and output (1, classes), got {dims} and {out_dims}")
    record, num_params = read_sidecar(path, dims, out_dims)
    return LiteRtModel(path, interpreter, record, num_params)


@register_predictor_loader(SUFFIX)
def _load_tflite_file(path: Path, threads: int | None) -> Predictor:
    model = load_litert(path, threads=threads)
    return Predictor(model.record, "litert", lambda batch: torch.from_numpy(model(batch.numpy())),
                     path.stat().st_size, model.num_params)
