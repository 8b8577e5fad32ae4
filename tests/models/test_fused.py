"""The fused path (oneDNN conv+ReLU, GEMM weight gradients, ReLU after max-pool, cheaper dropout)
computes what the plain path does."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from squeezelab.models import create_model
from squeezelab.models.fused import _long_matmul, fast_dropout, fast_global_average, fused_conv


def assert_close_in_norm(got: torch.Tensor, want: torch.Tensor, rel: float = 1e-4) -> None:
    """Float sums in another order: elementwise tolerances fail on entries that cancel to ~0
    (a batch-norm gradient's), so compare the error to the whole tensor's size."""
    error = (got - want).norm().item()
    assert error <= rel * max(want.norm().item(), 1e-12), (error, want.norm().item())


@pytest.mark.parametrize("kernel,stride,padding,bias", [(1, 1, 0, True), (3, 1, 1, True), (3, 2, 0, False), (7, 2, 0, True),
                                                     (1, 2, 0, True), (3, 2, 1, True)])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("out_channels", [8, 24])  # below and above the GEMM weight-gradient threshold
def test_fused_conv_matches_conv_and_relu(kernel, stride, padding, bias, channels_last, relu, out_channels):
    conv = nn.Conv2d(5, out_channels, kernel, stride, padding, bias=bias)
    x = torch.randn(2, 5, 15, 15)
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    plain = torch.relu(conv(x1)) if relu else conv(x1)
    plain.square().sum().backward()
    grads_plain = [p.grad.clone() for p in conv.parameters()]
    conv.zero_grad()
    fused = fused_conv(conv, x2, relu=relu)
    fused.square().sum().backward()
    torch.testing.assert_close(fused, plain)
    torch.testing.assert_close(x2.grad, x1.grad)
    # The weight gradient is a GEMM on channels_last data: the same sums in another order.
    for got, want in zip([p.grad for p in conv.parameters()], grads_plain):
        assert_close_in_norm(got, want)


@pytest.mark.parametrize("rows,m,n", [(98, 7, 5), (99, 7, 5), (64, 600, 600)])  # split, odd rows, wide product
def test_long_matmul_is_the_transposed_product(rows, m, n):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a, b = torch.randn(rows, m), torch.randn(rows, n)
        torch.testing.assert_close(_long_matmul(a, b), a.t() @ b, rtol=1e-5, atol=1e-4)
    finally:
        torch.set_num_threads(threads)


def test_fast_global_average_is_the_pool_in_values_and_gradients():
    pool = nn.AdaptiveAvgPool2d((1, 1))
    x = torch.randn(3, 6, 5, 5).contiguous(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    weights = torch.randn(3, 6)
    (torch.flatten(pool(x1), 1) * weights).sum().backward()
    (fast_global_average(pool, x2) * weights).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad)
    assert fast_global_average(nn.AdaptiveAvgPool2d(2), x).shape == (3, 24)  # not to 1x1: the pool itself


def test_fused_conv_skips_the_input_gradient_when_the_input_needs_none():
    conv = nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 9, 9).contiguous(memory_format=torch.channels_last)  # a batch: no grad
    fused_conv(conv, x).sum().backward()
    assert x.grad is None and conv.weight.grad is not None and conv.bias.grad is not None


def test_fast_dropout_is_inverted_dropout_with_the_right_rate():
    torch.manual_seed(0)
    x = torch.ones(200_000, requires_grad=True)
    dropout = nn.Dropout(0.3)
    y = fast_dropout(dropout, x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005  # binomial sd ~0.001
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.7))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # the same mask scales the gradient
    assert fast_dropout(dropout.eval(), x) is x


@pytest.mark.parametrize("p", [0.5, 0.1])
def test_fast_dropout_mask_is_unbiased_in_every_channel_of_a_channels_last_batch(p):
    torch.manual_seed(1)
    x = torch.ones(64, 16, 15, 15).contiguous(memory_format=torch.channels_last)  # numel not a multiple of 8
    y = fast_dropout(nn.Dropout(p), x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    kept = (y != 0).float()
    assert abs(kept.mean().item() - (1 - p)) < 0.005
    per_channel = kept.mean((0, 2, 3))  # each int16 lane of a 64-bit draw feeds its own channels
    assert (per_channel - (1 - p)).abs().max().item() < 0.03  # sd ~0.004 at 14,400 draws
    assert abs(y.mean().item() - 1.0) < 0.01  # 1/keep on the kept: the mean is unchanged


@pytest.mark.parametrize("name,kwargs,size", [
    ("squeezenet1_0", {}, 48),
    ("squeezenet1_1", {}, 40),
    ("squeezenet1_1", {"stem": "small", "batch_norm": True}, 16),
    ("squeezenet1_1_complex_bypass", {}, 40),
    ("squeezenet1_1", {"batch_norm": True}, 40),
])
def test_fused_model_matches_plain_in_values_and_gradients(name, kwargs, size):
    # Dropout off: the fast path draws its mask differently (test_fast_dropout_* covers it).
    plain = create_model(name, num_classes=7, dropout=0.0, **kwargs)
    fused = create_model(name, num_classes=7, dropout=0.0, **kwargs)
    fused.load_state_dict(plain.state_dict())
    fused.set_fused(True)
    x = torch.randn(2, 3, size, size)
    y = torch.randint(0, 7, (2,))
    out = {}
    for label, model in (("plain", plain), ("fused", fused)):
        logits = model(x)
        nn.functional.cross_entropy(logits, y).backward()
        out[label] = (logits, [p.grad for p in model.parameters()])
    torch.testing.assert_close(out["fused"][0], out["plain"][0], rtol=1e-5, atol=1e-6)
    for got, want in zip(out["fused"][1], out["plain"][1]):
        assert_close_in_norm(got, want)


def test_fused_switch_keeps_the_state_dict_and_turns_off():
    model = create_model("squeezenet1_1", num_classes=10)
    keys = list(model.state_dict())
    model.set_fused(True)
    assert list(model.state_dict()) == keys
    assert all(m.fused for m in model.modules() if type(m).__name__ == "Fire")
    model.set_fused(False)
    assert not any(m.fused for m in model.modules() if type(m).__name__ == "Fire")


def test_tracing_a_fused_model_records_the_plain_ops():
    model = create_model("squeezenet1_1", num_classes=4).set_fused(True).eval()
    x = torch.randn(1, 3, 40, 40)
    traced = torch.jit.trace(model, x)
    assert "mkldnn" not in str(traced.inlined_graph)
    torch.testing.assert_close(traced(x), model(x))


def test_fused_conv_runs_the_module_when_it_has_hooks():
    # torch.nn.utils.prune recomputes `weight` in a forward pre-hook; the fast kernel must not skip it.
    conv = nn.Conv2d(3, 24, 3)
    prune.l1_unstructured(conv, "weight", amount=0.5)  # (it cannot take channels_last weights)
    x = torch.randn(2, 3, 9, 9).contiguous(memory_format=torch.channels_last)
    for _ in range(2):  # a stale weight from the first step would fail the second backward
        fused_conv(conv, x).sum().backward()
    assert int((conv.weight == 0).sum()) >= conv.weight.numel() // 2
    seen = []
    conv.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    fused_conv(conv, x)
    assert seen == [torch.Size([2, 24, 7, 7])]
    dropout = nn.Dropout(0.5)
    dropout.register_forward_hook(lambda module, args, out: seen.append("dropout"))
    fast_dropout(dropout, x)
    assert seen[-1] == "dropout"
