"""int8 models through ONNX Runtime's static quantization, calibrated on real images.

Every format has per-channel int8 weights and activation ranges from MinMax calibration on real
images. Measured on a 2-core AVX-512 VNNI CPU (squeezenet1_1, 224x224, ONNX Runtime 1.32;
`python bench/inference.py`), relative to ONNX Runtime fp32:
- "qdq" (default): QuantizeLinear/DequantizeLinear pairs with uint8 activations and int8 weights
  (U8S8). ONNX Runtime fuses the pairs into the same QLinearConv/QLinearConcat NHWC graph as
  QOperator, so it is as fast (1.5x at batch 1, 1.6x at batch 32), and QDQ is the portable format
  other runtimes read; VNNI's u8 x s8 dot product is what makes U8S8 fast here.
- "qoperator": QLinearConv etc. written out (U8S8): the same speed here.
- "qdq_s8s8": ONNX Runtime's documented default (int8 activations): 0.6x fp32 here, *slower*, since
  this CPU has no fast s8 x s8 path; kept selectable for CPUs and runtimes where it pays.
Weights are 7-bit (`reduce_range`) in every format: ONNX Runtime's x86 int8 convolution adds pairs
of u8 x s8 products in int16 (vpmaddubsw), which saturates when both are large. On the trained
digits model that cost 1.1 points of accuracy (top-1 agreement with fp32 98.9%, logits off by up
to 2.3), all of it in the first convolution (kept in fp32, the loss vanished). With 7-bit weights
the pairs cannot overflow: 99.7% agreement, -0.3 points, logits within 0.17, and no speed
difference (squeezenet1_1 at batch 1 and 32: 0.98x and 1.01x, alternating runs). The S8S8 format
saturated the same way in tests/export/test_int8.py's bright-image convolution (34% error).
PyTorch's own int8 path was measured and not taken: FX int8 with the x86 backend ran squeezenet1_1
at 8.1 ms (batch 1) and 232 ms (batch 32) against ONNX Runtime int8's 5.4 ms and 171 ms, one
thread, same run (`python bench/int8_paths.py`: ONNX Runtime 1.49x / 1.36x faster).
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

from squeezelab.errors import SqueezelabError
from squeezelab.export.config import DEFAULT_INT8_FORMAT, INT8_FORMATS
from squeezelab.export.onnx import INPUT_NAME, make_session
from squeezelab.utils.atomic import atomic_write_bytes

FORMATS, DEFAULT_FORMAT = INT8_FORMATS, DEFAULT_INT8_FORMAT


@dataclasses.dataclass(frozen=True)
class Int8Report:
    path: str
    format: str
    calibration_images: int
    size_bytes: int
    fp32_size_bytes: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@contextlib.contextmanager
def _quiet():
    """ONNX Runtime's quantizer prints progress and logs protobuf dumps on the root logger for
    shape-only tensors it leaves in float (ShuffleNet's reshapes); keep them off the user's screen."""
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over preprocessed batches."""

    def __init__(self, batches: list[np.ndarray]):
        self._batches = iter(batches)

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}

    def rewind(self):  # pragma: no cover - only used by some calibrators
        pass


def _fit_batches(batches: list[torch.Tensor], fixed_batch: int | None) -> list[np.ndarray]:
    """Split calibration batches to the model's fixed batch size (1 for a default export)."""
    arrays = [b.float().numpy() for b in batches]
    if not fixed_batch:
        return arrays
    flat = np.concatenate(arrays)
    usable = len(flat) - len(flat) % fixed_batch
    return [flat[i:i + fixed_batch] for i in range(0, usable, fixed_batch)]


def quantize_int8(
    fp32_path: str | os.PathLike,
    out_path: str | os.PathLike,
    calibration: list[torch.Tensor],
    *,
    format: str = DEFAULT_FORMAT,
    per_channel: bool = True,
    share_concat_scales: bool = True,
) -> Int8Report:
    """Write an int8 copy of the fp32 ONNX model at `fp32_path`, calibrated on `calibration`.

    `calibration` is a list of preprocessed real-image batches (see export.calibration). The
    metadata (classes, preprocessing) is carried over so the int8 file serves on its own.

    >>> # quantize_int8("m.onnx", "m.int8.onnx", calibration_batches("photos/", model.record.preprocessing))
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if format not in FORMATS:
        raise SqueezelabError(f"unknown int8 format {format!r}; choose one of {', '.join(FORMATS)}")
    if not calibration:
        raise SqueezelabError("int8 calibration needs at least one real image; pass --calib-data")
    fp32 = onnx.load(str(fp32_path))
    dims = fp32.graph.input[0].type.tensor_type.shape.dim
    fixed_batch = dims[0].dim_value if dims[0].HasField("dim_value") else None
    arrays = _fit_batches(calibration, fixed_batch)
    count = sum(len(a) for a in arrays)
    quant_format = QuantFormat.QOperator if format == "qoperator" else QuantFormat.QDQ
    activation = QuantType.QInt8 if format == "qdq_s8s8" else QuantType.QUInt8
    with tempfile.TemporaryDirectory(prefix="squeezelab-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        with _quiet():
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantized = Path(tmp) / "int8.onnx"
        with _quiet():
            quantize_static(
                str(prepared), str(quantized), _Reader(arrays), quant_format=quant_format, per_channel=per_channel,
                activation_type=activation, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                reduce_range=True,
            )
        proto = onnx.load(str(quantized))
    if share_concat_scales:
        share_concat_scales_(proto)
    del proto.metadata_props[:]
    for entry in fp32.metadata_props:
        proto.metadata_props.add().CopyFrom(entry)
    proto.metadata_props.add(key="squeezelab.int8_format", value=f'"{format}"')
    data = proto.SerializeToString()
    atomic_write_bytes(out_path, data)
    return Int8Report(str(out_path), format, count, len(data), Path(fp32_path).stat().st_size)


def share_concat_scales_(proto) -> int:
    """Give every input of each quantized Concat the Concat's own scale and zero point, in place;
    returns how many Concats were changed.

    Calibrated separately, a Fire module's expand1x1 and expand3x3 outputs get their own ranges, and
    ONNX Runtime's QLinearConcat then requantizes every element through a lookup table; with one
    scale it copies (squeezenet1_1 at 224 px, one thread: the concats' time went from 0.82 to 0.13
    ms at batch 1 and from 22.7 to 7.9 ms at batch 32). The Concat's range is the union of its
    inputs', so each input keeps its values, on a grid at most as much coarser as its range is
    narrower than the other's. Q/DQ pairs (and QOperator producers) name one scale and zero point
    per tensor, so rewriting those initializers moves the producer's requantization and every reader
    of the tensor together."""
    from onnx import numpy_helper

    initializers = {tensor.name: tensor for tensor in proto.graph.initializer}
    producer = {name: node for node in proto.graph.node for name in node.output}
    readers: dict[str, list] = {}
    for node in proto.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def own_params(pair: tuple[str, str], activation: str) -> bool:
        """The scale and zero point belong to this one activation tensor: produced by a node (not a
        constant), read only by its own quantize/dequantize nodes or its producer and readers."""
        allowed = {id(producer[activation])} if activation in producer else set()
        if not allowed or any(name not in initializers for name in pair):
            return False
        users = {id(n) for name in pair for n in readers.get(name, [])}
        return users <= allowed | {id(n) for n in readers.get(activation, [])} | _qdq_pair_ids(activation)

    def _qdq_pair_ids(activation: str) -> set[int]:
        ids = set()
        for node in readers.get(activation, []):
            if node.op_type == "QuantizeLinear":
                ids.add(id(node))
                ids.update(id(n) for n in readers.get(node.output[0], []) if n.op_type == "DequantizeLinear")
        return ids

    changed, rewritten = 0, set()
    for node in proto.graph.node:
        if node.op_type == "QLinearConcat":  # (Y_scale, Y_zero_point, then X, X_scale, X_zero_point per input)
            target = tuple(node.input[:2])
            inputs = [(node.input[i], tuple(node.input[i + 1:i + 3])) for i in range(2, len(node.input), 3)]
        elif node.op_type == "Concat":  # QDQ: Q -> DQ -> Concat -> Q
            quantize = [r for r in readers.get(node.output[0], []) if r.op_type == "QuantizeLinear"]
            dequantize = [producer.get(name) for name in node.input]
            if len(quantize) != 1 or not all(d is not None and d.op_type == "DequantizeLinear"
                                             and getattr(producer.get(d.input[0]), "op_type", "") == "QuantizeLinear"
                                             for d in dequantize):
                continue
            target = tuple(quantize[0].input[1:3])
            inputs = [(producer[d.input[0]].input[0], tuple(d.input[1:3])) for d in dequantize]
        else:
            continue
        if any(name not in initializers for name in target) or \
                not all(own_params(pair, activation) and pair[0] not in rewritten for activation, pair in inputs):
            continue
        for _, (scale, zero_point) in inputs:
            for source, name in zip(target, (scale, zero_point)):
                initializers[name].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(initializers[source]), name))
            rewritten.add(scale)
        changed += 1
    return changed


def top1_agreement(fp32_path, int8_path, batches: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
    """Share of images where the int8 model's top-1 class equals the fp32 model's; with `labels`
    (in batch order) also both models' top-1 accuracy."""
    fp32, int8 = make_session(fp32_path), make_session(int8_path)
    fixed = fp32.get_inputs()[0].shape[0]
    arrays = _fit_batches(batches, fixed if isinstance(fixed, int) else None)
    same = total = 0
    predicted: set[int] = set()
    correct = {"fp32": 0, "int8": 0}
    max_diff = 0.0
    for batch in arrays:
        a = fp32.run(None, {INPUT_NAME: batch})[0]
        b = int8.run(None, {INPUT_NAME: batch})[0]
        same += int((a.argmax(1) == b.argmax(1)).sum())
        predicted.update(int(c) for c in a.argmax(1))
        if labels is not None:
            truth = labels[total:total + len(batch)].numpy()
            correct["fp32"] += int((a.argmax(1) == truth).sum())
            correct["int8"] += int((b.argmax(1) == truth).sum())
        total += len(batch)
        max_diff = max(max_diff, float(np.abs(a - b).max()))
    # a model that predicts one class for everything (random weights often do) agrees trivially
    result = {"images": total, "top1_agreement": same / total if total else float("nan"),
              "max_abs_logit_diff": max_diff, "fp32_classes_predicted": len(predicted)}
    if labels is not None and total:
        result.update(fp32_accuracy=correct["fp32"] / total, int8_accuracy=correct["int8"] / total)
    return result
