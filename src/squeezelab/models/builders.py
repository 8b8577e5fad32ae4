"""The registered SqueezeNet builders: thin typed wrappers over a layer table.

Every builder takes the same keyword options (see `SqueezeNet`): num_classes, dropout, batch_norm,
se_ratio, final_relu, head_norm, stem, in_chans, `table` to override the layer table (how a pruned model is
rebuilt), and `weights` / `weights_file`; the plain ones also take `bypass`.
"""

from __future__ import annotations

from typing import Sequence

from squeezelab.errors import SqueezelabError
from squeezelab.models.registry import register_model
from squeezelab.models.squeezenet import (
    SQUEEZENET1_0_TABLE,
    SQUEEZENET1_1_TABLE,
    SQUEEZENET_CIFAR_TABLE,
    PAPER_METAPARAMETERS as PAPER,
    Metaparameters,
    Row,
    SqueezeNet,
    build_squeezenet,
)
from squeezelab.models.weights import Weights, load_weights, resolve_weights

def _squeezenet(weights_for: str, table: Sequence[Row], *, weights, weights_file, **options) -> SqueezeNet:
    record, path = resolve_weights(weights_for, weights, weights_file)
    model = build_squeezenet(table, **options)
    if record is not None or path is not None:
        if record is not None and model.num_classes != record.num_classes:
            raise SqueezelabError(
                f"{record.name} has {record.num_classes} classes; build with num_classes="
                f"{record.num_classes} and call reset_classifier(n) to fine-tune"
            )
        load_weights(model, record, path)
    return model


@register_model()
def squeezenet1_0(
    *, num_classes: int = 1000, dropout: float = 0.5, batch_norm: bool = False, se_ratio: float = 0.0,
    bypass: str = "none", final_relu: bool = True, head_norm: bool = False, stem: str = "standard",
    in_chans: int = 3, table: Sequence[Row] | None = None, weights: str | Weights | None = None,
    weights_file: str | None = None,
) -> SqueezeNet:
    """SqueezeNet 1.0, the paper's network (1,248,424 parameters, 0.82 GMACs at 224)."""
    return _squeezenet("squeezenet1_0", table or SQUEEZENET1_0_TABLE, weights=weights, weights_file=weights_file,
                       num_classes=num_classes, dropout=dropout, batch_norm=batch_norm, se_ratio=se_ratio,
                       bypass=bypass, final_relu=final_relu, head_norm=head_norm, stem=stem, in_chans=in_chans)


@register_model()
def squeezenet1_1(
    *, num_classes: int = 1000, dropout: float = 0.5, batch_norm: bool = False, se_ratio: float = 0.0,
    bypass: str = "none", final_relu: bool = True, head_norm: bool = False, stem: str = "standard",
    in_chans: int = 3, table: Sequence[Row] | None = None, weights: str | Weights | None = None,
    weights_file: str | None = None,
) -> SqueezeNet:
    """SqueezeNet 1.1: 3x3 stem, earlier pooling, 2.4x fewer MACs than 1.0 at the same accuracy."""
    return _squeezenet("squeezenet1_1", table or SQUEEZENET1_1_TABLE, weights=weights, weights_file=weights_file,
                       num_classes=num_classes, dropout=dropout, batch_norm=batch_norm, se_ratio=se_ratio,
                       bypass=bypass, final_relu=final_relu, head_norm=head_norm, stem=stem, in_chans=in_chans)


@register_model()
def squeezenet_cifar(
    *, num_classes: int = 10, dropout: float = 0.0, batch_norm: bool = True, se_ratio: float = 0.0,
    bypass: str = "none", final_relu: bool = False, head_norm: bool = False, stem: str = "standard",
    in_chans: int = 3, table: Sequence[Row] | None = None, weights: str | Weights | None = None,
    weights_file: str | None = None,
) -> SqueezeNet:
    """SqueezeNet for small images (CIFAR's 32x32; the default for images of 64 px or less):
    Fire modules with batch norm, compute placed at 16x16 and 8x8 (0.68 M parameters, 58 M MACs
    at 32 px). Without batch norm after the sum, simple bypass makes its logits grow without bound
    within the first 20 steps, so it is off. The recipe that trains it is docs/training.md's."""
    return _squeezenet("squeezenet_cifar", table or SQUEEZENET_CIFAR_TABLE, weights=weights, weights_file=weights_file,
                       num_classes=num_classes, dropout=dropout, batch_norm=batch_norm, se_ratio=se_ratio,
                       bypass=bypass, final_relu=final_relu, head_norm=head_norm, stem=stem, in_chans=in_chans)


def _bypass_variant(base, bypass: str, doc: str):
    """A registered builder: `base` with `bypass` fixed, the same options otherwise."""

    def builder(
        *, num_classes: int = 1000, dropout: float = 0.5, batch_norm: bool = False, se_ratio: float = 0.0,
        final_relu: bool = True, head_norm: bool = False, stem: str = "standard", in_chans: int = 3,
        table: Sequence[Row] | None = None, weights: str | Weights | None = None, weights_file: str | None = None,
    ) -> SqueezeNet:
        return base(num_classes=num_classes, dropout=dropout, batch_norm=batch_norm, se_ratio=se_ratio,
                    bypass=bypass, final_relu=final_relu, head_norm=head_norm, stem=stem, in_chans=in_chans,
                    table=table, weights=weights, weights_file=weights_file)

    builder.__name__ = builder.__qualname__ = f"{base.__name__}_{bypass}_bypass"
    builder.__doc__ = doc
    return register_model(weights_for=base.__name__)(builder)


squeezenet1_0_simple_bypass = _bypass_variant(
    squeezenet1_0, "simple",
    "SqueezeNet 1.0 with identity bypass around fire3, 5, 7, 9 (paper Section 6; no new parameters).")
squeezenet1_0_complex_bypass = _bypass_variant(
    squeezenet1_0, "complex", "SqueezeNet 1.0 with simple bypass plus 1x1-conv bypass around the other Fire modules.")
squeezenet1_1_simple_bypass = _bypass_variant(
    squeezenet1_1, "simple", "SqueezeNet 1.1 with identity bypass where a Fire's input and output channels match.")
squeezenet1_1_complex_bypass = _bypass_variant(
    squeezenet1_1, "complex", "SqueezeNet 1.1 with simple bypass plus 1x1-conv bypass around the other Fire modules.")


@register_model()
def squeezenet_meta(
    *, base_e: int = PAPER.base_e, incr_e: int = PAPER.incr_e, freq: int = PAPER.freq, pct3x3: float = PAPER.pct3x3,
    squeeze_ratio: float = PAPER.squeeze_ratio,
    num_classes: int = 1000, dropout: float = 0.5, batch_norm: bool = False, se_ratio: float = 0.0,
    bypass: str = "none", final_relu: bool = True, head_norm: bool = False, stem: str = "standard",
    in_chans: int = 3, table: Sequence[Row] | None = None, weights: str | Weights | None = None,
    weights_file: str | None = None,
) -> SqueezeNet:
    """A SqueezeNet generated from the paper's Section 5 metaparameters (defaults: SqueezeNet 1.0);
    `table` (a pruned model's) replaces the generated one."""
    table = table or Metaparameters(base_e, incr_e, freq, pct3x3, squeeze_ratio).table()
    return _squeezenet("squeezenet_meta", table, weights=weights, weights_file=weights_file,
                       num_classes=num_classes, dropout=dropout, batch_norm=batch_norm, se_ratio=se_ratio,
                       bypass=bypass, final_relu=final_relu, head_norm=head_norm, stem=stem, in_chans=in_chans)
