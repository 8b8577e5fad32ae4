"""The model record beside a mobile file: `m.pte.json`, `m.tflite.json`.

Neither an ExecuTorch program nor a plain .tflite flatbuffer has a place for free-form key/value
metadata the way ONNX (metadata_props) and OpenVINO (rt_info) do, so the record travels in a
small JSON file beside the model. It holds what an app needs to feed the model and read its
answer (class names, input shape and layout, mean/std, channel order, resize/crop) plus what
`load_predictor` needs to rebuild the `ModelRecord`; the values are the same ones the ONNX export
writes as metadata, so `_record_from_metadata` reads both.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from squeezelab.errors import BadFileError
from squeezelab.export.onnx import META_PREFIX, _record_from_metadata
from squeezelab.models.record import ModelRecord
from squeezelab.utils.atomic import atomic_write_text

SIDECAR_VERSION = 1


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """m.pte -> m.pte.json"""
    return Path(str(model_path) + ".json")


def write_sidecar(model_path: str | os.PathLike, metadata: dict[str, str], *, runtime: str, precision: str,
                  input_shape: list[int], output_shape: list[int]) -> Path:
    """Write `model_path`.json (atomically) from `onnx.metadata_for`'s strings, plus the I/O
    description an app reads: float32 NCHW in, logits out."""
    record = {key[len(META_PREFIX):]: json.loads(value) for key, value in metadata.items()}
    document = {"format_version": SIDECAR_VERSION, "runtime": runtime, "precision": precision,
                "input": {"shape": input_shape, "layout": "NCHW", "dtype": "float32",
                          "note": "the image after preprocessing: resize, centre crop, scale, (x - mean) / std"},
                "output": {"shape": output_shape, "dtype": "float32", "meaning": "logits; softmax gives probabilities"},
                **record}
    path = sidecar_path(model_path)
    atomic_write_text(path, json.dumps(document, indent=2) + "\n")
    return path


def read_sidecar(model_path: Path, input_shape: list, output_shape: list) -> tuple[ModelRecord, int | None]:
    """The record (checked against the program's own input/output shapes) and parameter count
    from `model_path`.json; a file without one gets default classes and ImageNet preprocessing."""
    path = sidecar_path(model_path)
    props: dict[str, str] = {}
    if path.is_file():
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            raise BadFileError(f"{path} is not valid JSON; re-export {model_path.name} with `squeezelab export`") from None
        if not isinstance(document, dict):
            raise BadFileError(f"{path} is not a squeezelab record; re-export {model_path.name} with `squeezelab export`")
        props = {META_PREFIX + key: json.dumps(value) for key, value in document.items()}
    record = _record_from_metadata(model_path, props, list(input_shape), list(output_shape))
    num_params = json.loads(props.get(META_PREFIX + "num_params", "null"))
    return record, num_params if isinstance(num_params, int) else None
