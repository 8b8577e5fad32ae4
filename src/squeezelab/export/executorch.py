"""ExecuTorch export (.pte, lowered to XNNPACK; int8 through XNNPACK's PT2E quantizer) and opening
.pte files with ExecuTorch's own Python runtime.

ExecuTorch is PyTorch's on-device runtime for Android and iOS: `torch.export` captures the eval
model at batch 1, `to_edge_transform_and_lower` hands every operator XNNPACK supports (all of
SqueezeNet's) to the XNNPACK delegate, the CPU backend ExecuTorch ships on phones, and
`to_executorch` writes the program. The int8 program is quantized by XNNPACK's own quantizer
(`XNNPACKQuantizer`, symmetric per-channel weights, per-tensor activations, calibrated on real
images), so its int8 kernels run the graph. Each file is run here by `executorch.runtime` right
after it is written and compared with PyTorch; its record travels in `m.pte.json`
(export/sidecar.py). A program has a fixed input shape: batches run one image at a time.
"""

from __future__ import annotations

import dataclasses
import os
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

SUFFIX = ".pte"


def int8_pte_path(output: str | os.PathLike) -> str:
    """model.pte -> model.int8.pte"""
    return str(Path(output).with_suffix("")) + ".int8.pte"


def _lower(program, what: str) -> bytes:
    """An exported program lowered to XNNPACK and serialized as a .pte."""
    exir = import_mobile("executorch.exir", what)
    partitioner = import_mobile("executorch.backends.xnnpack.partition.xnnpack_partitioner", what)
    try:
        with quiet():
            lowered = exir.to_edge_transform_and_lower(program, partitioner=[partitioner.XnnpackPartitioner()])
            return lowered.to_executorch().buffer
    except Exception as exc:
        raise SqueezelabError(f"{what} failed: {first_line(exc)}") from None


def _runtime():
    return import_mobile("executorch.runtime", "running an ExecuTorch program").Runtime.get()


@dataclasses.dataclass
class ExecuTorchModel:
    """A .pte classifier run by ExecuTorch's runtime; call it with a float32 batch (N, 3, H, W)."""

    path: Path | None
    method: object  # executorch.runtime.Method, input (1, 3, H, W)
    program: object  # the Program the method belongs to, kept alive as long as the method
    record: ModelRecord | None
    num_params: int | None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(image_batch(batch))
        expected = tuple(self.method.metadata.input_tensor_meta(0).sizes())[1:]
        if tuple(batch.shape[1:]) != expected:
            raise SqueezelabError(f"this ExecuTorch program takes images of shape {expected}, got {tuple(batch.shape[1:])}")
        # the output tensor is the program's planned memory, overwritten by the next run: copy it
        outputs = [self.method.execute([batch[i:i + 1]])[0].clone() for i in range(len(batch))]
        return torch.cat(outputs).numpy().astype(np.float32, copy=False)


def _open_program(data: bytes | Path, threads: int | None = None):
    """(forward method, its program, the method's metadata) of a .pte held in memory or on disk."""
    runtime = _runtime()
    if threads:
        pybindings = import_mobile("executorch.extension.pybindings.portable_lib", "ExecuTorch threads")
        with quiet():  # it logs the reset to stderr
            pybindings._unsafe_reset_threadpool(int(threads))
    with quiet():
        program = runtime.load_program(data if isinstance(data, bytes) else str(data))
        method = program.load_method("forward")
    return method, program, method.metadata


def _report(model, data: bytes, path: Path, precision: str, size: int, batches, what: str) -> dict:
    """Write the program (atomically, with its sidecar) after it matched PyTorch on `batches`."""
    method, program, meta = _open_program(data)
    checked = compare_with_torch(model, ExecuTorchModel(None, method, program, None, None), batches, what)
    atomic_write_bytes(path, data)
    input_shape = [int(d) for d in meta.input_tensor_meta(0).sizes()]
    output_shape = [int(d) for d in meta.output_tensor_meta(0).sizes()]
    write_sidecar(path, metadata_for(model, size), runtime="executorch (XNNPACK)", precision=precision,
                  input_shape=input_shape, output_shape=output_shape)
    return {"path": str(path), "format": "executorch", "precision": precision, "input_size": size,
            "size_bytes": len(data), "sidecar": str(sidecar_path(path)), **checked}


def export_executorch(model: nn.Module, path: str | os.PathLike, *, input_size: int | None = None,
                      check_inputs: list[torch.Tensor] | None = None) -> dict:
    """Write `model` (with its `.record`) as an fp32 ExecuTorch program lowered to XNNPACK, checked
    against PyTorch by ExecuTorch's runtime on `check_inputs` (seeded random ones without them).

    >>> export_executorch(squeezelab.load_model("best.pt"), "m.pte")["max_abs_diff"] < 1e-4  # doctest: +SKIP
    True
    """
    path = _pte(path)
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    size = input_size or model_input_size(model)
    data = _lower(export_program(model, torch.zeros(1, 3, size, size)), "ExecuTorch export")
    return _report(model, data, path, "fp32", size, check_inputs or seeded_inputs(size),
                   "given" if check_inputs else "seeded random")


def quantize_executorch(model: nn.Module, path: str | os.PathLike, calibration: list[torch.Tensor],
                        held_out: list[torch.Tensor], *, input_size: int | None = None,
                        held_out_name: str = "held-out") -> dict:
    """Write an int8 ExecuTorch program: XNNPACK's PT2E quantizer calibrated on `calibration`,
    lowered to XNNPACK, its top-1 agreement with PyTorch fp32 measured on `held_out`."""
    path = _pte(path)
    quantizer = import_mobile("executorch.backends.xnnpack.quantizer.xnnpack_quantizer", "ExecuTorch int8 export")
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    size = input_size or model_input_size(model)
    sample = torch.zeros(1, 3, size, size)
    xnnpack = quantizer.XNNPACKQuantizer().set_global(quantizer.get_symmetric_quantization_config(is_per_channel=True))
    converted = pt2e_quantize(model, xnnpack, calibration, sample)
    data = _lower(export_program(converted, sample), "ExecuTorch int8 export")
    report = _report(model, data, path, "int8", size, held_out, held_out_name)
    return {**report, "calibration_images": sum(len(b) for b in calibration)}


def _pte(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() != SUFFIX:
        raise SqueezelabError(f"an ExecuTorch program is a .pte file; got -o {path}")
    return path


def load_executorch(path: str | os.PathLike, *, threads: int | None = None) -> ExecuTorchModel:
    """Open a .pte written by `export_executorch` (or any 1-input image classifier program)."""
    path = Path(path)
    try:
        method, program, meta = _open_program(path, threads)
    except SqueezelabError:
        raise
    except Exception as exc:
        raise BadFileError(f"{path} is not a loadable ExecuTorch program ({first_line(exc)})") from None
    if meta.num_inputs() != 1 or meta.num_outputs() != 1:
        raise BadFileError(f"{path} has {meta.num_inputs()} inputs and {meta.num_outputs()} outputs; "
                           "expected one image input and one logits output")
    dims = [int(d) for d in meta.input_tensor_meta(0).sizes()]
    out_dims = [int(d) for d in meta.output_tensor_meta(0).sizes()]
    if len(dims) != 4 or dims[1] != 3 or len(out_dims) != 2:
        raise BadFileError(f"{path}: expected input (1, 3, H, W) and output (1, classes), got {dims} and {out_dims}")
    record, num_params = read_sidecar(path, dims, out_dims)
    return ExecuTorchModel(path, method, program, record, num_params)


@register_predictor_loader(SUFFIX)
def _load_pte_file(path: Path, threads: int | None) -> Predictor:
    model = load_executorch(path, threads=threads)
    return Predictor(model.record, "executorch", lambda batch: torch.from_numpy(model(batch.numpy())),
                     path.stat().st_size, model.num_params)
