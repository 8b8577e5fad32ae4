"""Fused convolution + ReLU for CPU training: same numbers, fewer passes over memory.

On a 2-core CPU SqueezeNet's training step is memory-bound outside the convolutions: every eager
ReLU reads and writes a whole activation map. oneDNN can apply the ReLU inside the convolution
(`mkldnn::_convolution_pointwise`, the kernel torch.compile's CPU backend uses), so the forward
pass saves one full read and write per ReLU; the backward pass is the one autograd would run
(`threshold_backward` then `convolution_backward`). Outputs are bit-identical to
`relu(conv2d(x))` (checked in tests/models/test_fused.py). Where the kernel does not apply (CUDA,
non-float32, torch without oneDNN) the plain ops run instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _onednn_usable(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and conv.weight.dtype == torch.float32
        and conv.groups == 1
        and isinstance(conv.padding, tuple)
        and conv.padding_mode == "zeros"
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_tracing()  # ONNX export and tracing see the plain ops
        and not torch.jit.is_scripting()
        and not torch.compiler.is_compiling()
        and not torch.onnx.is_in_onnx_export()
    )


class _ConvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        y = torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, padding, stride, dilation, 1, "relu", [None], None
        )
        ctx.save_for_backward(x, weight, y)
        ctx.conv = (stride, padding, dilation, bias is not None)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, y = ctx.saved_tensors
        stride, padding, dilation, has_bias = ctx.conv
        grad = torch.ops.aten.threshold_backward(grad, y, 0)
        need = ctx.needs_input_grad
        gx, gw, gb = torch.ops.aten.convolution_backward(
            grad, x, weight, [weight.shape[0]] if has_bias else None,
            list(stride), list(padding), list(dilation), False, [0, 0], 1,
            [need[0], need[1], has_bias and need[2]],
        )
        return gx, gw, gb if has_bias else None, None, None, None


def conv_relu(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """relu(conv(x)) in one oneDNN kernel where it applies, else the plain two ops."""
    if not _onednn_usable(x, conv):
        return F.relu(conv(x), inplace=True)
    return _ConvReLU.apply(
        x, conv.weight, conv.bias, list(conv.stride), list(conv.padding), list(conv.dilation)
    )
