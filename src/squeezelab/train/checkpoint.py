"""Checkpoints that rebuild everything from the file alone, written atomically, read safely.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (no pickled classes),
so it loads with `torch.load(weights_only=True)`: opening a checkpoint someone sent you cannot run
their code. It is written to a temporary file and renamed, so a kill at any moment leaves either
the previous file or the new one.

Keys of a checkpoint (every consumer relies on them):
    format, version          "squeezelab-checkpoint", 1
    model                    ModelConfig.to_dict(): registry name + options (incl. a pruned table)
    state_dict               the model's weights
    classes                  class names, index order
    preprocessing            Preprocessing.to_dict(): what `predict` and `export` feed the model
    provenance               Provenance.to_dict(): squeezelab version and git revision that wrote
                             the file, the Weights record training started from (absent in files
                             written before it was added)
    data                     the data config (spec, image size, the saved val split), so
                             `eval`/`compress` without --data use the same validation images
    train, speed             the training and speed configs
    optimizer, scheduler     state dicts, for --resume
    epoch, metrics           last finished epoch; its metrics (val top1 as a fraction, ...)
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from torch import nn

from squeezelab.errors import BadFileError, SqueezelabError
from squeezelab.models.rebuild import rebuild
from squeezelab.models.record import ModelRecord, Provenance
from squeezelab.utils.atomic import atomic_write_bytes

FORMAT = "squeezelab-checkpoint"
VERSION = 1  # 'provenance' is an optional key: older readers open newer files and the reverse


def record_entries(record: ModelRecord) -> dict:
    """The checkpoint keys that hold `record`: model, classes, preprocessing, provenance (and
    class_ids where known)."""
    data = record.to_dict()
    entries = {"model": {"name": data["name"], "options": data["options"]}, "classes": data["classes"],
               "preprocessing": data["preprocessing"], "provenance": data["provenance"]}
    return {**entries, "class_ids": data["class_ids"]} if record.class_ids else entries


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write `payload` (must hold 'model' config dict and 'state_dict') atomically, stamped with
    the running squeezelab's version and git revision."""
    weights = (payload.get("provenance") or {}).get("weights")
    stamp = Provenance.current(weights).to_dict()
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload, "provenance": stamp}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a squeezelab checkpoint without executing anything from it."""
    path = Path(path)
    if not path.is_file():
        raise SqueezelabError(f"checkpoint {path} does not exist; pass the .pt file that `squeezelab train` wrote")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BadFileError(
            f"{path} is not a readable squeezelab checkpoint ({type(exc).__name__}); it may be truncated or not a .pt file"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadFileError(f"{path} is not a squeezelab checkpoint (no '{FORMAT}' marker)")
    if data.get("version", 0) > VERSION:
        raise BadFileError(f"{path} is checkpoint version {data['version']}; this squeezelab reads <= {VERSION}: upgrade it")
    for key in ("model", "state_dict"):
        if key not in data:
            raise BadFileError(f"{path} lacks '{key}'; it is incomplete")
    return data


def record_from_checkpoint(data: dict) -> ModelRecord:
    """The `ModelRecord` a checkpoint holds (any version)."""
    return ModelRecord.from_dict({**data["model"], "classes": data.get("classes"), "class_ids": data.get("class_ids"),
                                  "preprocessing": data.get("preprocessing"), "provenance": data.get("provenance")})


def model_from_checkpoint(data: dict) -> nn.Module:
    """The model a checkpoint holds, rebuilt from its record, in eval mode, with `model.record`."""
    try:
        return rebuild(record_from_checkpoint(data), data["state_dict"])
    except SqueezelabError as exc:
        raise BadFileError(f"checkpoint does not rebuild: {exc}") from None
