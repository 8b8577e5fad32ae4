"""The CPU training fast path's kernels: same numbers, fewer passes over memory.

On a 2-core CPU SqueezeNet's training step is memory-bound outside the convolutions, and
oneDNN's backward-weights kernels are slow on NHWC data. The changes, each measured on
squeezenet1_1 224x224 batch 32 (bench/train_throughput.py):

- conv+ReLU in one oneDNN kernel (`mkldnn::_convolution_pointwise`, the kernel torch.compile's
  CPU backend uses): the forward pass saves one full read and write per ReLU. Outputs are
  bit-identical to `relu(conv2d(x))`.
- the weight gradient as one GEMM over im2col patches of the NHWC input (MKL), instead of
  oneDNN's backward-weights kernel: 1.0-1.7x faster per layer (3x3 Fire expands 1.4-1.7x, the
  1000-class conv 1.45x), split over threads as a batched GEMM (1.1-1.6x more). Same sums in
  another order: float rounding only (~1e-5 relative).
- dropout's mask from `rand_like(x) >= p` instead of `bernoulli_`: about 3x faster on CPU, the
  same Bernoulli(1 - p) distribution, but another draw than nn.Dropout's from the same seed.
  (Sixteen random bits an element, four per 64-bit draw, halved the mask's cost again in
  isolation but made no measurable difference to a step: not kept.)
- the global average as `mean`, whose backward keeps the classifier's gradient channels_last
  (adaptive_avg_pool2d's backward wrote it NCHW, and the ReLU backward reading two layouts
  took 18 ms instead of 2).

The grad-input pass is the one autograd would run (`threshold_backward`, then
`convolution_backward`). Where the kernels do not apply (CUDA, non-float32, groups or dilation,
torch without oneDNN, tracing or ONNX export) the plain ops run instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _needs_the_module(module: nn.Module) -> bool:
    """True where `module(x)` itself must run, not a kernel standing in for it.

    Calling the kernels directly skips `module(x)`, and with it any forward hooks (e.g.
    torch.nn.utils.prune computes `weight` in a pre-hook, so skipping it trains a stale weight);
    tracing, scripting, torch.compile and ONNX export must see the plain ops.
    """
    from torch.nn.modules import module as module_globals

    return bool(
        module._forward_pre_hooks or module._forward_hooks
        or module_globals._global_forward_pre_hooks or module_globals._global_forward_hooks
        or torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()
        or torch.onnx.is_in_onnx_export()
    )


def _onednn_usable(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    return (
        not _needs_the_module(conv)
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and conv.weight.dtype == torch.float32
        and conv.groups == 1
        and conv.dilation == (1, 1)
        and isinstance(conv.padding, tuple)
        and conv.padding_mode == "zeros"
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and not torch.is_autocast_enabled("cpu")
    )


def _patches(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
             padding: tuple[int, int], ones_column: bool) -> torch.Tensor:
    """im2col of a channels_last batch: (N*Ho*Wo, kh*kw*C), plus a column of ones if asked
    (then patches^T @ grad also yields the bias gradient). A view for 1x1 stride-1 kernels
    without the ones column; otherwise one gather copy."""
    if padding != (0, 0):
        x = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    shape = (n, (h - kh) // sh + 1, (w - kw) // sw + 1, kh, kw, c)
    nhwc = x.permute(0, 2, 3, 1)
    s = nhwc.stride()
    windows = nhwc.as_strided(shape, (s[0], sh * s[1], sw * s[2], s[1], s[2], s[3]))
    if not ones_column:
        return windows.reshape(-1, kh * kw * c)
    width = kh * kw * c + 1
    out = x.new_empty(shape[0] * shape[1] * shape[2], width)
    out.as_strided(shape, (shape[1] * shape[2] * width, shape[2] * width, width, kw * c, c, 1)).copy_(windows)
    out[:, -1] = 1.0
    return out


def _weight_grad(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, stride, padding,
                 bias_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """dL/dW as patches^T @ (N*Ho*Wo, Cout) (this orientation measured 10% faster than its
    transpose), and dL/db either from a ones column appended to the patches or as column sums.

    The ones column is free only where im2col copies anyway and the patch width is not already
    a multiple of 16 floats (one AVX-512 register): appended to squeezenet1_1's 3x3 expands
    (144-576 columns) it cost 5-10% of their weight gradient; on conv1 (27 -> 28 columns) it
    saves the column sums' extra pass over a 100 MB gradient.
    """
    cout, cin, kh, kw = weight.shape
    rows = grad.permute(0, 2, 3, 1).reshape(-1, cout)
    strided = (kh, kw) != (1, 1) or tuple(stride) != (1, 1) or tuple(padding) != (0, 0)
    ones_column = bias_grad and strided and (kh * kw * cin) % _GEMM_TILE != 0
    product = _long_matmul(_patches(x, (kh, kw), tuple(stride), tuple(padding), ones_column), rows)
    gw = product[: kh * kw * cin].t().reshape(cout, kh, kw, cin).permute(0, 3, 1, 2)
    if not bias_grad:
        return gw, None
    return gw, product[-1] if ones_column else rows.sum(0)


_GEMM_TILE = 16


def _long_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a^T @ b where the shared dimension (N*Ho*Wo rows) is long and the product small.

    MKL splits such a GEMM over its small output and leaves threads waiting; one GEMM per thread
    over a slice of the rows (a batched GEMM), summed, ran 1.1-1.6x faster on squeezenet1_1's
    weight gradients (conv1: 40 -> 25 ms; a 16 -> 64 1x1 at 55x55: 7.6 -> 4.7 ms; 2 threads).
    Above _SPLIT_MAX_PRODUCT elements (the 512 -> 1000 classifier) it measured no faster.
    """
    k, m = a.shape
    n = b.shape[1]
    parts = torch.get_num_threads()
    if parts < 2 or k % parts or m * n > _SPLIT_MAX_PRODUCT:
        return a.t() @ b
    return torch.bmm(a.reshape(parts, k // parts, m).transpose(1, 2), b.reshape(parts, k // parts, n)).sum(0)


_SPLIT_MAX_PRODUCT = 1 << 18

# Below this many output channels the GEMM is too narrow: a 512 -> 10 classifier's weight
# gradient took 12.3 ms as a GEMM and 3.8 ms in oneDNN (batch 128, 8x8); at 16 the GEMM won.
_GEMM_MIN_OUT_CHANNELS = 16


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, relu):
        y = torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, padding, stride, [1, 1], 1, "relu" if relu else "none", [None], None
        )
        ctx.save_for_backward(x, weight, y if relu else None)
        ctx.conv = (stride, padding, bias is not None)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, y = ctx.saved_tensors
        stride, padding, has_bias = ctx.conv
        if y is not None:
            grad = torch.ops.aten.threshold_backward(grad, y, 0)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        need_b = need_b and has_bias
        gx = gw = gb = None
        if need_x:
            gx = torch.ops.aten.convolution_backward(
                grad, x, weight, None, stride, padding, [1, 1], False, [0, 0], 1, [True, False, False]
            )[0]
        if need_w or need_b:
            if x.is_contiguous(memory_format=torch.channels_last) and weight.shape[0] >= _GEMM_MIN_OUT_CHANNELS:
                gw, gb = _weight_grad(grad, x, weight, stride, padding, need_b)
            else:  # NCHW (im2col would gather across planes) or a narrow output: oneDNN's kernel
                _, gw, gb = torch.ops.aten.convolution_backward(
                    grad, x, weight, [weight.shape[0]] if has_bias else None, stride, padding,
                    [1, 1], False, [0, 0], 1, [False, True, need_b],
                )
        return gx, gw if need_w else None, gb if need_b else None, None, None, None


def fused_conv(conv: nn.Conv2d, x: torch.Tensor, relu: bool = True) -> torch.Tensor:
    """conv(x), then ReLU if `relu`, with the fast kernels where they apply, else the plain ops."""
    if not _onednn_usable(x, conv):
        y = conv(x)
        return F.relu(y, inplace=True) if relu else y
    return _Conv.apply(x, conv.weight, conv.bias, list(conv.stride), list(conv.padding), relu)


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p):
        mask = torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))  # 0 or 1/(1-p)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def fast_dropout(dropout: nn.Dropout, x: torch.Tensor) -> torch.Tensor:
    """dropout(x): nn.Dropout's distribution with a cheaper mask draw (see the module docstring)
    where it applies, else the module itself (hooks, CUDA, tracing)."""
    if not dropout.training or dropout.p == 0.0:
        return x
    if _needs_the_module(dropout) or x.device.type != "cpu":
        return dropout(x)
    return _Dropout.apply(x, dropout.p)


def fast_global_average(pool: nn.AdaptiveAvgPool2d, x: torch.Tensor) -> torch.Tensor:
    """flatten(pool(x), 1) for a pool to 1x1, as `x.mean((2, 3))` where that applies.

    Why: adaptive_avg_pool2d's backward writes an NCHW gradient even for a channels_last batch,
    and the classifier's ReLU backward then reads two layouts at once (squeezenet1_1 batch 32:
    18.4 ms instead of 1.7). mean's backward is a broadcast view, read in any layout for free.
    """
    if pool.output_size not in (1, (1, 1)) or _needs_the_module(pool):
        return torch.flatten(pool(x), 1)
    return x.mean((2, 3))
