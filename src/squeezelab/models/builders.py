"""The registered SqueezeNet builders: thin wrappers over a table and options.

Every builder takes the same options (see `SqueezeNet` and `build_squeezenet`): num_classes,
dropout, bypass, batch_norm, se_ratio, final_relu, stem, in_chans, and `table` to override the
layer table (how a pruned model is rebuilt), plus `weights` / `weights_file`.
"""

from __future__ import annotations

from squeezelab.errors import SqueezelabError
from squeezelab.models.registry import register_model
from squeezelab.models.squeezenet import (
    SQUEEZENET1_0_TABLE,
    SQUEEZENET1_1_TABLE,
    Metaparameters,
    SqueezeNet,
    build_squeezenet,
)
from squeezelab.models.weights import load_weights, resolve_weights
from squeezelab.preprocessing import TORCHVISION_IMAGENET


def _squeezenet(name: str, default_table, *, table=None, weights=None, weights_file=None, **kwargs) -> SqueezeNet:
    record, path = resolve_weights(name, weights, weights_file)
    table = table or default_table
    model = build_squeezenet(table, **kwargs)
    model.preprocessing = record.preprocessing if record else TORCHVISION_IMAGENET
    if record is not None or path is not None:
        if record is not None and model.num_classes != record.num_classes:
            raise SqueezelabError(
                f"{record.name} has {record.num_classes} classes; build with num_classes="
                f"{record.num_classes} and call reset_classifier(n) to fine-tune"
            )
        load_weights(model, record, path)
    return model


@register_model()
def squeezenet1_0(**kwargs) -> SqueezeNet:
    """SqueezeNet 1.0, the paper's network (1,248,424 parameters, 0.82 GMACs at 224)."""
    return _squeezenet("squeezenet1_0", SQUEEZENET1_0_TABLE, **kwargs)


@register_model()
def squeezenet1_1(**kwargs) -> SqueezeNet:
    """SqueezeNet 1.1: 3x3 stem, earlier pooling, 2.4x fewer MACs than 1.0 at the same accuracy."""
    return _squeezenet("squeezenet1_1", SQUEEZENET1_1_TABLE, **kwargs)


@register_model()
def squeezenet1_0_simple_bypass(**kwargs) -> SqueezeNet:
    """SqueezeNet 1.0 with identity bypass around fire3, 5, 7, 9 (paper Section 6; no new parameters)."""
    return _squeezenet("squeezenet1_0", SQUEEZENET1_0_TABLE, bypass="simple", **kwargs)


@register_model()
def squeezenet1_0_complex_bypass(**kwargs) -> SqueezeNet:
    """SqueezeNet 1.0 with simple bypass plus 1x1-conv bypass around the other Fire modules."""
    return _squeezenet("squeezenet1_0", SQUEEZENET1_0_TABLE, bypass="complex", **kwargs)


@register_model()
def squeezenet1_1_simple_bypass(**kwargs) -> SqueezeNet:
    """SqueezeNet 1.1 with identity bypass where a Fire's input and output channels match."""
    return _squeezenet("squeezenet1_1", SQUEEZENET1_1_TABLE, bypass="simple", **kwargs)


@register_model()
def squeezenet1_1_complex_bypass(**kwargs) -> SqueezeNet:
    """SqueezeNet 1.1 with simple bypass plus 1x1-conv bypass around the other Fire modules."""
    return _squeezenet("squeezenet1_1", SQUEEZENET1_1_TABLE, bypass="complex", **kwargs)


@register_model()
def squeezenet_meta(
    *,
    base_e: int = 128,
    incr_e: int = 128,
    freq: int = 2,
    pct3x3: float = 0.5,
    squeeze_ratio: float = 0.125,
    **kwargs,
) -> SqueezeNet:
    """A SqueezeNet generated from the paper's Section 5 metaparameters (defaults: SqueezeNet 1.0)."""
    table = Metaparameters(base_e, incr_e, freq, pct3x3, squeeze_ratio).table()
    return _squeezenet("squeezenet_meta", table, **kwargs)
