"""Export a model to ONNX, check it, and open ONNX files safely.

SqueezeNet is meant for small devices and cheap servers (paper, Section 1): ONNX Runtime runs it
about 4x faster than PyTorch eager on CPU at batch 1 (bench/inference.py). The export is always in
eval mode (dropout off), keeps the ceil_mode max-pools exact (ONNX MaxPool has `ceil_mode`, so no
padding trick is needed), records the model record (name, options, class names, preprocessing,
provenance) as ONNX metadata so a served .onnx file needs nothing else, and is checked twice: by
`onnx.checker` and against PyTorch on real inputs (the max abs difference is reported).

An .onnx file someone sends you is untrusted input: `load_onnx` checks its size, rejects external
data references (they name arbitrary paths on disk), runs the checker and requires one image input
(N, 3, H, W) and one (N, classes) output before ONNX Runtime sees it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from squeezelab.errors import BadFileError, SqueezelabError
from squeezelab.export.config import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
from squeezelab.models.rebuild import record_of
from squeezelab.models.record import ModelRecord, Provenance, RecordFace, default_classes, package_version
from squeezelab.preprocessing import TORCHVISION_IMAGENET, Preprocessing
from squeezelab.utils.atomic import atomic_write_bytes

MAX_ONNX_BYTES = 512 * 2**20  # refuse to parse anything larger than 512 MiB
INPUT_NAME, OUTPUT_NAME = "input", "logits"
META_PREFIX = "squeezelab."


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What `export_onnx` wrote and how closely ONNX Runtime matches PyTorch on the check inputs."""

    path: str
    opset: int
    dynamic_batch: bool
    input_size: int
    num_classes: int
    size_bytes: int
    max_abs_diff: float
    checked_on: str  # what the parity inputs were

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _record(model: nn.Module) -> ModelRecord:
    """The model's record; a module from outside the registry gets one naming its class."""
    try:
        return record_of(model)
    except SqueezelabError:
        return ModelRecord(type(model).__name__, {}, default_classes(int(getattr(model, "num_classes", 0) or 0)))


def model_input_size(model: nn.Module) -> int:
    return _record(model).preprocessing.crop


def metadata_for(model: nn.Module, input_size: int) -> dict[str, str]:
    """The key/value strings recorded in the ONNX file (all JSON, prefixed 'squeezelab.'): the
    model record field by field, plus the input size and parameter count."""
    record = _record(model).stamped()
    return {
        f"{META_PREFIX}model": json.dumps(record.name),
        f"{META_PREFIX}options": json.dumps(record.options),
        f"{META_PREFIX}classes": json.dumps(list(record.classes)),
        f"{META_PREFIX}preprocessing": json.dumps(record.preprocessing.to_dict()),
        f"{META_PREFIX}provenance": json.dumps(record.provenance.to_dict()),
        f"{META_PREFIX}input_size": json.dumps(input_size),
        f"{META_PREFIX}num_params": json.dumps(sum(p.numel() for p in model.parameters())),
    }


@contextlib.contextmanager
def _native_stdout_silenced():
    """Standard output at the file-descriptor level to /dev/null: when the TorchScript exporter
    gives up, torch's C++ code prints the whole traced graph ("Torch IR graph at exception", 70
    lines for AlexNet) to fd 1, which `redirect_stdout` cannot reach. Not for concurrent use from
    several threads (fd 1 is the process's); nothing in squeezelab exports from threads."""
    _flush_stdout()  # what is already written goes out now, not into /dev/null
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 (a detached process): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        try:
            _flush_stdout()  # what C stdio still buffers goes to /dev/null too, not out at exit
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _flush_stdout() -> None:
    """Flush Python's real stdout and C stdio's buffers."""
    import ctypes

    if sys.__stdout__ is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.__stdout__.flush()
    if os.name == "posix":
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).fflush(None)


def _to_onnx_bytes(model: nn.Module, sample: torch.Tensor, opset: int, dynamic_batch: bool) -> bytes:
    """The TorchScript-based exporter first: it honours the requested opset exactly and exports a
    SqueezeNet in 0.2 s. The torch.export-based exporter (about 3 s, opset >= 18) is the fallback
    for graphs the first cannot express (AlexNet's adaptive pooling at small inputs)."""
    buffer = io.BytesIO()
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    common = dict(input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=axes)
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            with _native_stdout_silenced():
                torch.onnx.export(model, (sample,), buffer, dynamo=False, opset_version=opset,
                                  do_constant_folding=True, **common)
            return buffer.getvalue()
        except Exception as first:
            reason = str(first).splitlines()[0][:160] if str(first) else type(first).__name__
        buffer = io.BytesIO()
        try:
            torch.onnx.export(model, (sample,), buffer, dynamo=True, opset_version=max(opset, 18), verbose=False,
                              **common)
            return buffer.getvalue()
        except Exception:
            raise SqueezelabError(f"ONNX export failed: {reason}; try another --opset or --input-size") from None


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    input_size: int | None = None,
    check_inputs: torch.Tensor | None = None,
) -> ExportReport:
    """Write `model` as ONNX to `path` (atomically) and check it against PyTorch.

    `check_inputs` are real preprocessed images (N, 3, H, W); without them a seeded random batch is
    used and the report says so. The model is put in eval mode and left there.

    >>> import squeezelab, tempfile
    >>> report = export_onnx(squeezelab.create_model("squeezenet1_1", num_classes=10),
    ...                      tempfile.mktemp(suffix=".onnx"), input_size=64)
    >>> report.max_abs_diff < 1e-4
    True
    """
    import onnx

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise SqueezelabError(f"opset {opset} is not supported; pick one in {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    model = model.eval().float().to(memory_format=torch.contiguous_format)
    size = input_size or model_input_size(model)
    sample = torch.zeros(1, 3, size, size)
    data = _to_onnx_bytes(model, sample, opset, dynamic_batch)
    proto = onnx.load_from_string(data)
    for key, value in metadata_for(model, size).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "squeezelab"
    proto.producer_version = package_version() or ""
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), opset)
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()

    if check_inputs is None:
        generator = torch.Generator().manual_seed(0)
        check_inputs = torch.randn(2 if dynamic_batch else 1, 3, size, size, generator=generator)
        source = "seeded random normal"
    else:
        source = "given"
    if not dynamic_batch:
        check_inputs = check_inputs[:1]  # a fixed-batch graph takes exactly one image
    checked_on = f"{len(check_inputs)} {source} input(s)"
    diff = parity(model, data, check_inputs)
    atomic_write_bytes(path, data)
    return ExportReport(str(path), opset, dynamic_batch, size, int(getattr(model, "num_classes", 0) or 0),
                        len(data), diff, checked_on)


def parity(model: nn.Module, onnx_model: bytes | str | os.PathLike, inputs: torch.Tensor) -> float:
    """Max abs difference between PyTorch's and ONNX Runtime's logits on `inputs`."""
    session = make_session(onnx_model)
    with torch.no_grad():
        expected = model.eval()(inputs.float()).numpy()
    got = session.run(None, {session.get_inputs()[0].name: inputs.float().numpy()})[0]
    return float(np.abs(got - expected).max())


def make_session(onnx_model: bytes | str | os.PathLike, threads: int | None = None, *, spinning: bool = False):
    """An ONNX Runtime CPU session with all graph optimisations; `threads` caps intra-op threads.

    Idle intra-op threads sleep instead of spinning (`spinning=False`): on a 2-core machine shared
    with other processes, ONNX Runtime's spinning workers took the cores from the thread doing the
    work, and squeezenet1_1 int8 at batch 1 ran 8.2-10.9 ms spinning against 4.1-4.2 ms not
    (bench/runtimes.py; OpenVINO int8 5.2 ms in the same run)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    source = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


# ---- opening ONNX files (untrusted input) ---------------------------------------------------------


def image_batch(batch) -> np.ndarray:
    """`batch` as the contiguous float32 (N, 3, H, W) array every runtime takes; one line otherwise."""
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise SqueezelabError(f"expected a batch (N, 3, H, W), got shape {batch.shape}")
    return batch


@dataclasses.dataclass
class OnnxModel(RecordFace):
    """An ONNX classifier with the record `export_onnx` wrote, run by ONNX Runtime.

    Call it with a float32 numpy batch (N, 3, H, W); it returns logits (N, classes).
    """

    path: Path
    session: object
    record: ModelRecord
    input_size: int
    num_params: int | None
    fixed_batch: int | None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = image_batch(batch)
        if self.fixed_batch is not None and batch.shape[0] != self.fixed_batch:
            # a fixed-batch export: run the images one chunk at a time
            chunks = [self(batch[i:i + self.fixed_batch]) for i in range(0, len(batch), self.fixed_batch)]
            return np.concatenate(chunks)
        return self.session.run(None, {INPUT_NAME: batch})[0]


def _meta(props: dict[str, str], key: str, default):
    raw = props.get(META_PREFIX + key)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        raise BadFileError(f"ONNX metadata '{META_PREFIX}{key}' is not valid JSON; re-export with `squeezelab export`") from None


def load_onnx(path: str | os.PathLike, *, threads: int | None = None, max_bytes: int = MAX_ONNX_BYTES) -> OnnxModel:
    """Validate and open an ONNX classifier written by `export_onnx` (or any 1-input image model)."""
    import onnx
    from onnx import TensorProto

    path = Path(path)
    if not path.is_file():
        raise SqueezelabError(f"ONNX file {path} does not exist")
    size = path.stat().st_size
    if size == 0 or size > max_bytes:
        raise BadFileError(f"{path} is {size} bytes; an ONNX model must be between 1 byte and {max_bytes} bytes")
    try:
        proto = onnx.load_from_string(path.read_bytes())  # never follows external data
    except Exception:
        raise BadFileError(f"{path} is not a readable ONNX file; it may be truncated or another format") from None
    for tensor in proto.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            raise BadFileError(f"{path} refers to external data files; re-export it as one self-contained file")
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise BadFileError(f"{path} fails the ONNX checker ({str(exc).splitlines()[0][:120]})") from None
    feeds = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    if len(feeds) != 1 or len(proto.graph.output) != 1:
        raise BadFileError(f"{path} has {len(feeds)} inputs and {len(proto.graph.output)} outputs; expected one image input and one logits output")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in feeds[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] != 3 or feeds[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise BadFileError(f"{path}: input must be float32 (N, 3, H, W), got shape {dims}")
    out_dims = [d.dim_value if d.HasField("dim_value") else None for d in proto.graph.output[0].type.tensor_type.shape.dim]
    if len(out_dims) != 2:
        raise BadFileError(f"{path}: output must be (N, classes), got shape {out_dims}")

    props = {p.key: p.value for p in proto.metadata_props}
    record = _record_from_metadata(path, props, dims, out_dims)
    with _quiet_ort():
        try:
            session = make_session(path, threads)
        except Exception as exc:
            raise BadFileError(f"ONNX Runtime cannot run {path.name} ({type(exc).__name__})") from None
    return OnnxModel(path, session, record, record.preprocessing.crop, _meta(props, "num_params", None), dims[0])


def _record_from_metadata(path: Path, props: dict[str, str], dims: list, out_dims: list) -> ModelRecord:
    """The record in the metadata, checked against the graph's input and output shapes; a file
    without squeezelab metadata gets default classes and torchvision's preprocessing."""
    input_size = _meta(props, "input_size", dims[2] or 224)
    num_classes = out_dims[1]
    classes = _meta(props, "classes", [str(i) for i in range(num_classes or 0)])
    preprocessing_dict = _meta(props, "preprocessing", None)
    if not isinstance(classes, list) or (num_classes and len(classes) != num_classes):
        raise BadFileError(f"{path}: metadata lists {len(classes) if isinstance(classes, list) else '?'} classes but the output has {num_classes}")
    if not isinstance(input_size, int) or not 1 <= input_size <= 4096 or (dims[2] and dims[2] != input_size):
        raise BadFileError(f"{path}: recorded input size {input_size!r} does not match the input shape {dims}")
    try:
        preprocessing = Preprocessing.from_dict(preprocessing_dict) if preprocessing_dict else TORCHVISION_IMAGENET
    except (TypeError, ValueError) as exc:
        raise BadFileError(f"{path}: bad preprocessing metadata ({exc})") from None
    if preprocessing.crop != input_size:
        preprocessing = dataclasses.replace(preprocessing, crop=input_size, resize=max(preprocessing.resize, input_size))
    options, provenance = _meta(props, "options", {}), _meta(props, "provenance", None)
    if not isinstance(options, dict) or not (provenance is None or isinstance(provenance, dict)):
        raise BadFileError(f"{path}: bad options or provenance metadata; re-export with `squeezelab export`")
    return ModelRecord(str(_meta(props, "model", path.stem)), options, tuple(str(c) for c in classes), preprocessing,
                       Provenance.from_dict(provenance))


@contextlib.contextmanager
def _quiet_ort():
    import onnxruntime as ort

    level = ort.get_default_logger_severity() if hasattr(ort, "get_default_logger_severity") else 2
    ort.set_default_logger_severity(3)
    try:
        yield
    finally:
        ort.set_default_logger_severity(level)


def real_inputs(images: Sequence, preprocessing: Preprocessing) -> torch.Tensor:
    """PIL images -> the model's float batch (what the parity check should be run on)."""
    return preprocessing.images_to_batch(list(images))
