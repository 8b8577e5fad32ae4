"""ncnn export (param/bin through pnnx) and opening ncnn models with ncnn's Python binding.

ncnn is the runtime of phones and ARM boards; an app loads `model.param` and `model.bin` with
`ncnn::Net`. pnnx converts the traced model (input blob `in0`, output blob `out0`). The model
record (classes, preprocessing) goes in `model.record.json` beside them, the same JSON strings as
the ONNX metadata, so the pair serves on its own. Parity with PyTorch is checked with ncnn's fp16
storage, packing and arithmetic switched off (on ARM they are on by default and cost about 1e-3
on the logits); apps may switch them back on for speed.

int8 is not offered: ncnn's quantization tools (ncnn2table, ncnn2int8) are C++ programs that
ship with ncnn's source builds, not with the `ncnn` or `pnnx` Python packages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from squeezelab.errors import BadFileError, SqueezelabError
from squeezelab.export.check import claim_weights_file, compare_with_torch, import_runtime, seeded_inputs
from squeezelab.export.onnx import META_PREFIX, _record_from_metadata, image_batch, metadata_for, model_input_size
from squeezelab.models.record import ModelRecord
from squeezelab.utils.atomic import atomic_write_bytes

INPUT_BLOB, OUTPUT_BLOB = "in0", "out0"


def record_path(param: str | os.PathLike) -> Path:
    """model.param -> model.record.json"""
    return Path(param).with_suffix(".record.json")


@dataclasses.dataclass
class NcnnModel:
    """An ncnn classifier run on the CPU, fp32 throughout; call it with a float32 batch (N, 3, H, W).
    ncnn runs one image at a time (its Mat has no batch axis)."""

    path: Path
    net: object  # ncnn.Net
    record: ModelRecord | None
    num_params: int | None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import ncnn

        batch = image_batch(batch)
        rows = []
        for image in batch:
            with self.net.create_extractor() as extractor:
                extractor.input(INPUT_BLOB, ncnn.Mat(image).clone())
                status, out = extractor.extract(OUTPUT_BLOB)
                if status != 0:
                    raise BadFileError(f"{self.path}: ncnn could not run the model (status {status})")
                rows.append(np.array(out, dtype=np.float32).reshape(-1))
        return np.stack(rows)


def _net(param: Path, weights: Path, threads: int | None):
    ncnn = import_runtime("ncnn", "running an ncnn model")
    net = ncnn.Net()
    for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage",
                 "use_vulkan_compute"):
        if hasattr(net.opt, flag):
            setattr(net.opt, flag, False)
    net.opt.num_threads = int(threads or os.cpu_count() or 1)
    if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
        raise BadFileError(f"{param} is not a readable ncnn model (param/bin pair)")
    return net


@contextlib.contextmanager
def _default_sigchld():
    """SIGCHLD at its default while pnnx runs: a process that has used DataLoader workers keeps
    torch's SIGCHLD handler, which crashes the process (SIGSEGV) when an unrelated child exits."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, previous)


def _convert(model: nn.Module, size: int, folder: Path) -> tuple[Path, Path]:
    """Trace `model` and let pnnx write model.ncnn.param/.bin in `folder`."""
    pnnx = import_runtime("pnnx", "ncnn export")
    traced_file = folder / "model.pt"
    sample = torch.zeros(1, 3, size, size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation and the input-size check's TracerWarning
        torch.jit.trace(model, sample).save(str(traced_file))
    param, weights = folder / "model.ncnn.param", folder / "model.ncnn.bin"
    # pnnx's own executable, quietly (its Python wrapper prints every pass and imports the model it
    # writes); fp16=0: pnnx halves the stored weights by default
    with _default_sigchld():
        done = subprocess.run([pnnx.EXEC_PATH, str(traced_file), f"inputshape=[1,3,{size},{size}]f32", "device=cpu",
                               f"ncnnparam={param}", f"ncnnbin={weights}", "fp16=0"],
                              cwd=folder, capture_output=True, text=True)
    if not (param.is_file() and weights.is_file()):
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise SqueezelabError(f"pnnx could not convert the model to ncnn ({last[0][:120]}); export ONNX instead")
    return param, weights


def export_ncnn(model: nn.Module, path: str | os.PathLike, *, input_size: int | None = None,
                check_inputs: list[torch.Tensor] | None = None) -> dict:
    """Write `model` (with its `.record`) as ncnn `path` (.param) + .bin + .record.json (fp32),
    checked against PyTorch on `check_inputs` (real preprocessed batches; seeded random ones without)."""
    path = Path(path)
    if path.suffix.lower() != ".param":
        raise SqueezelabError(f"an ncnn model is a .param file (with its .bin beside it); got -o {path}")
    claim_weights_file(path, ".xml")
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    size = input_size or model_input_size(model)
    metadata = metadata_for(model, size)
    with tempfile.TemporaryDirectory(prefix="squeezelab-ncnn-") as tmp:
        param, weights = _convert(model, size, Path(tmp))
        checked = compare_with_torch(model, NcnnModel(path, _net(param, weights, None), None, None),
                                     check_inputs or seeded_inputs(size), "given" if check_inputs else "seeded random")
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(record_path(path), json.dumps(metadata, indent=1).encode())
        atomic_write_bytes(path.with_suffix(".bin"), weights.read_bytes())
        atomic_write_bytes(path, param.read_bytes())
    size_bytes = sum(f.stat().st_size for f in (path, path.with_suffix(".bin")))
    return {"path": str(path), "format": "ncnn", "precision": "fp32", "input_size": size, "size_bytes": size_bytes,
            "record": str(record_path(path)), **checked}


def load_ncnn(path: str | os.PathLike, *, threads: int | None = None) -> NcnnModel:
    """Open an ncnn model written by `export_ncnn`: `path` (.param), its .bin and .record.json."""
    path = Path(path)
    weights, meta_file = path.with_suffix(".bin"), record_path(path)
    if not weights.is_file():
        raise SqueezelabError(f"{path}: its weights {weights.name} are missing beside it")
    if not meta_file.is_file():
        raise SqueezelabError(f"{path}: its record {meta_file.name} (classes, preprocessing) is missing beside it; "
                              "re-export with `squeezelab export --format ncnn`")
    try:
        props = json.loads(meta_file.read_text())
        size = int(json.loads(props[META_PREFIX + "input_size"]))
        classes = json.loads(props[META_PREFIX + "classes"])
    except (ValueError, KeyError, TypeError):
        raise BadFileError(f"{meta_file} is not a squeezelab record; re-export with `squeezelab export --format ncnn`") from None
    net = _net(path, weights, threads)
    record = _record_from_metadata(path, props, [1, 3, size, size], [1, len(classes)])
    num_params = props.get(META_PREFIX + "num_params")
    return NcnnModel(path, net, record, int(num_params) if num_params and num_params.isdigit() else None)
