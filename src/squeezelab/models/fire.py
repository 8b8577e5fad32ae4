"""The Fire module (SqueezeNet paper, Section 3.2) and its optional extras.

A Fire module squeezes its input with 1x1 filters (s1x1), then expands with parallel 1x1 (e1x1)
and 3x3 (e3x3) filters whose outputs are concatenated. Keeping s1x1 < e1x1 + e3x3 limits the
input channels seen by the 3x3 filters, which is where SqueezeNet saves its parameters.

Attribute names follow torchvision (`squeeze`, `expand1x1`, `expand3x3`) so state dicts are
interchangeable when the extras (batch norm, squeeze-and-excitation, bypass) are off.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import SqueezeExcitation

from squeezelab.models.fused import fused_conv

BYPASS_KINDS = ("none", "simple", "complex")


class Fire(nn.Module):
    """squeeze 1x1 + ReLU -> [expand 1x1 + ReLU, expand 3x3 + ReLU] concatenated on channels.

    `bypass` adds the paper's Section 6 residual: "identity" when input and output channels
    match, "conv" for a 1x1 convolution where they differ (complex bypass).

    >>> Fire(96, 16, 64, 64)(torch.zeros(1, 96, 55, 55)).shape
    torch.Size([1, 128, 55, 55])
    """

    def __init__(
        self,
        in_ch: int,
        squeeze: int,
        expand1x1: int,
        expand3x3: int,
        *,
        batch_norm: bool = False,
        se_ratio: float = 0.0,
        bypass: str = "none",
    ):
        super().__init__()
        self.inplanes = in_ch
        out_ch = expand1x1 + expand3x3
        self.squeeze = nn.Conv2d(in_ch, squeeze, kernel_size=1, bias=not batch_norm)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1, bias=not batch_norm)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1, bias=not batch_norm)
        self.expand3x3_activation = nn.ReLU(inplace=True)
        if batch_norm:
            self.squeeze_bn = nn.BatchNorm2d(squeeze)
            self.expand1x1_bn = nn.BatchNorm2d(expand1x1)
            self.expand3x3_bn = nn.BatchNorm2d(expand3x3)
        self.batch_norm = batch_norm
        if se_ratio > 0:
            self.se = SqueezeExcitation(out_ch, max(1, round(out_ch * se_ratio)))
        self.bypass = bypass
        if bypass == "conv":
            self.bypass_conv = nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=not batch_norm)
            if batch_norm:
                self.bypass_bn = nn.BatchNorm2d(out_ch)
        elif bypass == "identity" and in_ch != out_ch:
            raise ValueError(f"an identity bypass needs equal channels, got {in_ch} -> {out_ch}")
        elif bypass not in ("none", "identity", "conv"):
            raise ValueError(f"bypass must be 'none', 'identity' or 'conv', got {bypass!r}")

    # Set by SqueezeNet.set_fused (the training fast path, squeezelab.runtime): the
    # fast convolution kernels, with the ReLU inside them where no batch norm sits between. Off by
    # default so hooks on the ReLU modules (per-layer summaries) see every layer.
    fused = False

    @property
    def plain(self) -> bool:
        """No squeeze-and-excitation, bypass or batch norm: the output is the ReLU'd
        concatenation of two convolutions, so the fused conv+ReLU fast path applies."""
        return not hasattr(self, "se") and self.bypass == "none" and not self.batch_norm

    def forward_pre_relu(self, x: torch.Tensor) -> torch.Tensor:
        """The concatenated expand outputs before their ReLU (plain Fire modules only).

        relu(maxpool(z)) == maxpool(relu(z)) with the same gradients, since both are monotone; a
        model whose next layer is a max-pool can apply the ReLU on the 4x smaller pooled map.
        """
        s = fused_conv(self.squeeze, x)
        return torch.cat([fused_conv(self.expand1x1, s, relu=False), fused_conv(self.expand3x3, s, relu=False)], 1)

    @property
    def out_channels(self) -> int:
        return self.expand1x1.out_channels + self.expand3x3.out_channels

    def _branch(self, conv: nn.Conv2d, bn_name: str, x: torch.Tensor) -> torch.Tensor:
        x = fused_conv(conv, x, relu=False) if self.fused else conv(x)
        return getattr(self, bn_name)(x) if self.batch_norm else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused and self.plain:
            s = fused_conv(self.squeeze, x)
            return torch.cat([fused_conv(self.expand1x1, s), fused_conv(self.expand3x3, s)], 1)
        s = self.squeeze_activation(self._branch(self.squeeze, "squeeze_bn", x))
        out = torch.cat(
            [
                self.expand1x1_activation(self._branch(self.expand1x1, "expand1x1_bn", s)),
                self.expand3x3_activation(self._branch(self.expand3x3, "expand3x3_bn", s)),
            ],
            1,
        )
        if hasattr(self, "se"):
            out = self.se(out)
        if self.bypass == "identity":
            out = out + x
        elif self.bypass == "conv":
            out = out + self._branch(self.bypass_conv, "bypass_bn", x)
        return out
