"""SqueezeNet built from a layer table (Iandola et al., 2016, Sections 3-6).

A model is a table of rows, read top to bottom:

    ("conv", out_ch, kernel, stride, padding)   stem convolution + ReLU
    ("pool",)                                   3x3 / stride 2 max-pool, ceil_mode (as Caffe)
    ("fire", s1x1, e1x1, e3x3)                  a Fire module

SqueezeNet 1.0 and 1.1 are two such tables; `table_from_metaparameters` generates tables from the
paper's Section 5 metaparameters (base_e, incr_e, freq, pct3x3, SR); structured pruning rewrites
the fire rows. The table is saved with every checkpoint, so any variant rebuilds from its file.
With the options off, the module layout and initialisation are torchvision's, so state dicts load
`strict=True` in both directions.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch
from torch import nn

from squeezelab.errors import SqueezelabError
from squeezelab.models.fire import BYPASS_KINDS, Fire
from squeezelab.models.fused import fast_dropout, fast_global_average, fused_conv

Row = tuple

# fmt: off
SQUEEZENET1_0_TABLE: tuple[Row, ...] = (
    ("conv", 96, 7, 2, 0), ("pool",),
    ("fire", 16, 64, 64), ("fire", 16, 64, 64), ("fire", 32, 128, 128), ("pool",),
    ("fire", 32, 128, 128), ("fire", 48, 192, 192), ("fire", 48, 192, 192), ("fire", 64, 256, 256), ("pool",),
    ("fire", 64, 256, 256),
)
SQUEEZENET1_1_TABLE: tuple[Row, ...] = (
    ("conv", 64, 3, 2, 0), ("pool",),
    ("fire", 16, 64, 64), ("fire", 16, 64, 64), ("pool",),
    ("fire", 32, 128, 128), ("fire", 32, 128, 128), ("pool",),
    ("fire", 48, 192, 192), ("fire", 48, 192, 192), ("fire", 64, 256, 256), ("fire", 64, 256, 256),
)
# For images of 64 px or less (CIFAR's 32x32): a 3x3 stride-1 stem, one narrow Fire at full
# resolution, then width where the map is small, as the fastest CIFAR-10 trainers place their
# compute (most of it at 16x16 and 8x8). Built with batch norm; 58 M MACs at 32 px.
SQUEEZENET_CIFAR_TABLE: tuple[Row, ...] = (
    ("conv", 32, 3, 1, 1), ("fire", 16, 32, 32), ("pool",),
    ("fire", 32, 128, 128), ("fire", 32, 128, 128), ("pool",),
    ("fire", 64, 256, 256), ("fire", 64, 256, 256), ("pool",),
    ("fire", 64, 256, 256),
)
# fmt: on

# A stem rewrites the rows before the first Fire, keeping the table's stem width. "small" keeps full
# resolution for 32x32 images: a 3x3 stride-1 convolution and no first max-pool (the Fires then see
# 32x32, 16x16 and 8x8). "cifar" is how common CIFAR-10 ports adapt ImageNet models: the same 3x3
# stride-1 convolution, then the first max-pool kept (16x16, 8x8, 4x4: a 4x4 map at the end, as
# the peers' "cifar" stems in models/peers.py give), at about a quarter of "small"'s MACs.
STEMS = ("standard", "small", "cifar")


@dataclasses.dataclass(frozen=True)
class Metaparameters:
    """The paper's Section 5 design knobs; the defaults are SqueezeNet 1.0."""

    base_e: int = 128
    incr_e: int = 128
    freq: int = 2
    pct3x3: float = 0.5
    squeeze_ratio: float = 0.125

    def table(self) -> tuple[Row, ...]:
        return table_from_metaparameters(**dataclasses.asdict(self))


PAPER_METAPARAMETERS = Metaparameters()  # the one place the paper's values are written


def table_from_metaparameters(
    base_e: int = PAPER_METAPARAMETERS.base_e,
    incr_e: int = PAPER_METAPARAMETERS.incr_e,
    freq: int = PAPER_METAPARAMETERS.freq,
    pct3x3: float = PAPER_METAPARAMETERS.pct3x3,
    squeeze_ratio: float = PAPER_METAPARAMETERS.squeeze_ratio,
    num_fires: int = 8,
    pool_after: Sequence[int] = (2, 6),
    stem: Row = ("conv", 96, 7, 2, 0),
) -> tuple[Row, ...]:
    """The paper's Section 5 generator: Fire i has e_i = base_e + incr_e * floor(i / freq)
    expand filters, of which pct3x3 are 3x3, and s1x1 = SR * e_i squeeze filters.

    `pool_after` lists the Fire indices (0-based) followed by a max-pool; the defaults give
    SqueezeNet 1.0 exactly.

    >>> table_from_metaparameters() == SQUEEZENET1_0_TABLE
    True
    """
    if not 0.0 <= pct3x3 <= 1.0:
        raise SqueezelabError(f"pct3x3 must be in [0, 1], got {pct3x3}")
    if squeeze_ratio <= 0:
        raise SqueezelabError(f"squeeze_ratio (SR) must be > 0, got {squeeze_ratio}")
    if freq < 1 or base_e < 1 or incr_e < 0:
        raise SqueezelabError("need freq >= 1, base_e >= 1 and incr_e >= 0")
    rows: list[Row] = [tuple(stem), ("pool",)]
    for i in range(num_fires):
        expand = base_e + incr_e * (i // freq)
        e3x3 = round(expand * pct3x3)
        squeeze = max(1, round(expand * squeeze_ratio))
        rows.append(("fire", squeeze, expand - e3x3, e3x3))
        if i in pool_after:
            rows.append(("pool",))
    return tuple(rows)


def _rows_with_stem(table: Sequence[Row], stem: str) -> tuple[Row, ...]:
    if stem not in STEMS:
        raise SqueezelabError(f"unknown stem {stem!r}; choose one of {list(STEMS)}")
    table = tuple(tuple(r) for r in table)
    if stem == "standard":
        return table
    first_fire = next(i for i, row in enumerate(table) if row[0] == "fire")
    stem_width = next(row[1] for row in table if row[0] == "conv")
    pool = (("pool",),) if stem == "cifar" and ("pool",) in table[:first_fire] else ()
    return (("conv", stem_width, 3, 1, 1),) + pool + table[first_fire:]


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _pool_out(size: int, kernel: int = 3, stride: int = 2) -> int:
    out = math.ceil((size - kernel) / stride) + 1
    if (out - 1) * stride >= size:  # PyTorch drops a last window that starts past the input
        out -= 1
    return out


def spatial_size_after(table: Sequence[Row], size: int) -> int:
    """The feature map's side length after the table, for a square input of `size`."""
    for row in table:
        if size < 1:
            return size
        if row[0] == "conv":
            size = _conv_out(size, row[2], row[3], row[4])
        elif row[0] == "pool":
            size = _pool_out(size) if size >= 2 else 0
    return size


def min_input_size(table: Sequence[Row]) -> int:
    """The smallest square input the table accepts (21 for 1.0, 17 for 1.1)."""
    return next(s for s in range(1, 4096) if spatial_size_after(table, s) >= 1)


def layer_names(table: Sequence[Row]) -> list[str]:
    """Paper-style names for the table's rows: conv1, maxpool1, fire2, ..., as in Table 1."""
    names, number = [], 0
    for row in table:
        if row[0] == "pool":
            names.append(f"maxpool{number}")
        else:
            number += 1
            names.append(f"{row[0]}{number}")
    return names


def _feature_layers(table: Sequence[Row], channels: int, *, batch_norm: bool, se_ratio: float, bypass: str):
    """The modules of `features` for a layer table, their paper names by module path, and the
    channels coming out. Bypass goes where channels match (identity) or, for `complex`, through a
    1x1 conv elsewhere (Section 6)."""
    names: dict[str, str] = {}
    layers: list[nn.Module] = []
    for row, name in zip(table, layer_names(table)):
        kind = row[0]
        names[f"features.{len(layers)}"] = name
        if kind == "conv":
            _, out_ch, kernel, stride, padding = row
            layers.append(nn.Conv2d(channels, out_ch, kernel, stride, padding, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU(inplace=True))
            channels = out_ch
        elif kind == "pool":
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
        elif kind == "fire":
            _, squeeze, e1, e3 = row
            out_ch = e1 + e3
            kind_of_bypass = "none"
            if bypass != "none":
                kind_of_bypass = "identity" if channels == out_ch else ("conv" if bypass == "complex" else "none")
            layers.append(Fire(channels, squeeze, e1, e3, batch_norm=batch_norm, se_ratio=se_ratio, bypass=kind_of_bypass))
            channels = out_ch
        else:
            raise SqueezelabError(f"unknown table row {row!r}: rows are conv, pool or fire")
    return layers, names, channels


class SqueezeNet(nn.Module):
    """SqueezeNet from a layer table, with torchvision's module layout.

    `features` holds the table's layers, `classifier` is dropout -> final 1x1 conv -> ReLU ->
    global average pool. The ReLU after the final conv is the original design (kept for weight
    compatibility) but can die and zero every logit when training from scratch:
    `final_relu=False` replaces it with an identity.

    `head_norm` ends `features` with a batch norm of the classifier's input (off: the paper's and
    torchvision's layout). The trainer turns it on for batch-norm models with bypass
    (`train.recipe.default_model_config`): their Fire outputs are sums of non-negative maps whose
    mean grows along the bypass chain, the final conv's gradient follows that mean, and the logits
    swing to the hundreds within 20 steps at a rate of 0.03 (measured on CIFAR-10, where bypass
    then trained no better than chance while the plain model learned); normalising the
    classifier's input removes it.
    """

    def __init__(
        self,
        table: Sequence[Row] = SQUEEZENET1_0_TABLE,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.5,
        bypass: str = "none",
        batch_norm: bool = False,
        se_ratio: float = 0.0,
        final_relu: bool = True,
        head_norm: bool = False,
    ):
        super().__init__()
        if bypass not in BYPASS_KINDS:
            raise SqueezelabError(f"unknown bypass {bypass!r}; choose one of {list(BYPASS_KINDS)}")
        if num_classes < 1:
            raise SqueezelabError(f"num_classes must be >= 1, got {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise SqueezelabError(f"dropout must be in [0, 1), got {dropout}")
        self.table = tuple(tuple(r) for r in table)
        self.num_classes = num_classes
        self.min_input_size = min_input_size(self.table)
        layers, self.layer_names, channels = _feature_layers(self.table, in_chans, batch_norm=batch_norm,
                                                             se_ratio=se_ratio, bypass=bypass)
        if head_norm:
            self.layer_names[f"features.{len(layers)}"] = "head_bn"
            layers.append(nn.BatchNorm2d(channels))
        self.features = nn.Sequential(*layers)
        self.num_features = channels
        final_conv = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            final_conv,
            nn.ReLU(inplace=True) if final_relu else nn.Identity(),
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        last = len([r for r in self.table if r[0] != "pool"]) + 1
        self.layer_names.update({"classifier.1": f"conv{last}", "classifier.3": f"avgpool{last}"})
        self._init_weights(final_conv)

    def _init_weights(self, final_conv: nn.Conv2d) -> None:
        # torchvision's initialisation; the final conv's small N(0, 0.01) start is the paper's.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is final_conv:
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    fused = False

    def set_fused(self, enabled: bool = True) -> "SqueezeNet":
        """Switch the fast path on or off (squeezelab.models.fused): fused conv+ReLU kernels,
        weight gradients as GEMMs, a cheaper dropout draw, and the ReLU before each max-pool
        moved after it (same values and gradients, a quarter of the memory traffic).

        Off by default: forward hooks on the ReLU modules do not fire on the fast path.
        """
        self.fused = enabled
        for module in self.modules():
            if isinstance(module, Fire):
                module.fused = enabled
        return self

    def _fused_features(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self.features)
        i = 0
        while i < len(layers):
            layer = layers[i]
            after = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layer, nn.Conv2d) and isinstance(after, nn.ReLU):
                pool = layers[i + 2] if i + 2 < len(layers) else None
                if isinstance(pool, nn.MaxPool2d):
                    x, i = torch.relu_(pool(fused_conv(layer, x, relu=False))), i + 3
                else:
                    x, i = fused_conv(layer, x), i + 2
            elif isinstance(layer, nn.Conv2d):  # batch norm follows
                x, i = fused_conv(layer, x, relu=False), i + 1
            elif isinstance(layer, Fire) and layer.plain and isinstance(after, nn.MaxPool2d):
                x, i = torch.relu_(after(layer.forward_pre_relu(x))), i + 2
            else:
                x, i = layer(x), i + 1
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise SqueezelabError(f"expected a 4-D batch (N, C, H, W), got shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < self.min_input_size:
            raise SqueezelabError(
                f"input {x.shape[-2]}x{x.shape[-1]} is too small for this model: "
                f"the minimum is {self.min_input_size}x{self.min_input_size}"
            )
        return self._fused_features(x) if self.fused else self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            dropout, conv, activation, pool = self.classifier
            x = fast_dropout(dropout, x)
            x = fused_conv(conv, x, relu=isinstance(activation, nn.ReLU))
            return fast_global_average(pool, x)
        return torch.flatten(self.classifier(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final conv with a fresh one for `num_classes` (for fine-tuning)."""
        old = self.classifier[1]
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1).to(old.weight.device)
        nn.init.normal_(new.weight, mean=0.0, std=0.01)
        nn.init.constant_(new.bias, 0)
        self.classifier[1] = new
        self.num_classes = num_classes


def build_squeezenet(table: Sequence[Row], *, stem: str = "standard", **kwargs) -> SqueezeNet:
    return SqueezeNet(_rows_with_stem(table, stem), **kwargs)
