"""From a record back to a module, and from a module to its record.

Every file format stores a `ModelRecord` and a state dict; `rebuild` is the one way back to a
runnable model, so a checkpoint, a .sqz file and a pruned model all rebuild alike (Torch-Pruning's
warning: a pruned model's state dict alone no longer loads; its layer table travels with it).
"""

from __future__ import annotations

import torch
from torch import nn

from squeezelab.errors import SqueezelabError
from squeezelab.models.config import ModelConfig
from squeezelab.models.fire import Fire
from squeezelab.models.record import ModelRecord, default_classes
from squeezelab.models.registry import build_module


def build(record: ModelRecord) -> nn.Module:
    """The architecture `record` describes, freshly initialised, carrying `record`."""
    model = ModelConfig(record.name, dict(record.options)).build()
    model.record = record if record.classes else record.replace(classes=default_classes(model.num_classes))
    return model


def rebuild(record: ModelRecord, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """The model `record` describes, filled with `state_dict` (strict), in eval mode, carrying
    `record` as `model.record`.

    >>> from squeezelab.models import create_model
    >>> model = create_model("squeezenet1_1", num_classes=3)
    >>> rebuild(model.record, model.state_dict()).record == model.record
    True
    """
    model = build(record)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise SqueezelabError(f"the weights do not fit the architecture: {str(exc).splitlines()[0]}") from None
    if record.classes and len(record.classes) != model.num_classes:
        raise SqueezelabError(f"{len(record.classes)} class names for a model with {model.num_classes} outputs")
    return model.eval()


def expected_shapes(record: ModelRecord) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes `record`'s architecture has, found on the `meta` device (nothing is
    allocated, so a hostile layer table in a file costs nothing to check)."""
    with torch.device("meta"):
        skeleton = build_module(record.name, **ModelConfig(record.name, dict(record.options)).builder_options())
    return {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}


def record_of(model: nn.Module) -> ModelRecord:
    """`model.record`, or for a table-built SqueezeNet made without the registry, the record read
    off its modules (table, classes, channels, dropout, batch norm, bypass, SE, final ReLU)."""
    record = getattr(model, "record", None)
    if record is not None:
        return record
    if not hasattr(model, "table"):
        raise SqueezelabError("this model has no record; build it with squeezelab.create_model")
    fires = [m for m in model.features if isinstance(m, Fire)]
    bypasses = {f.bypass for f in fires}
    se = [f.se.fc1.out_channels / f.out_channels for f in fires if hasattr(f, "se")]
    options = {
        "table": [list(r) for r in model.table],
        "stem": "standard",  # the table already holds the stem rows
        "num_classes": model.num_classes,
        "in_chans": model.features[0].in_channels,
        "dropout": model.classifier[0].p,
        "batch_norm": any(isinstance(m, nn.BatchNorm2d) for m in model.features.modules()),
        "bypass": "complex" if "conv" in bypasses else ("simple" if "identity" in bypasses else "none"),
        "se_ratio": se[0] if se else 0.0,
        "final_relu": isinstance(model.classifier[2], nn.ReLU),
    }
    return ModelRecord("squeezenet1_0", options, default_classes(model.num_classes))


def config_of(model: nn.Module) -> ModelConfig:
    """The `ModelConfig` (registry name + options) that rebuilds `model`'s architecture."""
    record = record_of(model)
    return ModelConfig(record.name, dict(record.options))
