"""The speed switches change speed, not results: the fast path's losses track the plain path's.

Tolerance: after 4 SGD steps the losses agree to 1e-4 relative and the weights to 1e-4 absolute
(different but equally valid float summation orders in channels_last convolutions and the fused
optimizer; the fused conv+ReLU itself is bit-identical, tests/models/test_fused.py). Dropout is
off here: its random mask is drawn in memory order, so channels_last draws a different (equally
valid) mask from the same seed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from squeezelab.models import create_model
from squeezelab import runtime

CPU = torch.device("cpu")


def _train(config: runtime.SpeedConfig, steps: int = 4) -> tuple[list[float], nn.Module]:
    torch.manual_seed(0)
    model = create_model("squeezenet1_1", stem="small", num_classes=10, final_relu=False, dropout=0.0)
    model = runtime.prepare_model(model, CPU, config)
    opt = torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4,
        **runtime.optimizer_options(torch.optim.SGD, CPU, config),
    )
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        x = runtime.prepare_batch(torch.randn(8, 3, 32, 32, generator=gen), CPU, config)
        y = torch.randint(0, 10, (8,), generator=gen)
        opt.zero_grad(set_to_none=True)
        with runtime.autocast(CPU, runtime.training_precision(CPU, config)):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model


def test_fast_path_loss_matches_plain_fp32_path():
    plain_losses, plain = _train(runtime.SpeedConfig.plain())
    fast_losses, fast = _train(runtime.SpeedConfig(fused_optimizer=True, amp="off"))  # bf16 rounds differently
    assert plain_losses[0] != plain_losses[-1]  # it trained, so agreement means something
    for got, want in zip(fast_losses, plain_losses):
        assert abs(got - want) <= 1e-4 * abs(want), (fast_losses, plain_losses)
    for (name, a), b in zip(plain.state_dict().items(), fast.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-4), name


def test_prepare_model_switches_the_fused_path_and_memory_format():
    model = runtime.prepare_model(create_model("squeezenet1_1", num_classes=10), CPU, runtime.SpeedConfig())
    assert model.fused
    assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain = runtime.prepare_model(create_model("squeezenet1_1", num_classes=10), CPU, runtime.SpeedConfig.plain())
    assert not plain.fused


def test_optimizer_options_only_offer_fused_where_accepted():
    assert runtime.optimizer_options(torch.optim.SGD, CPU, runtime.SpeedConfig(fused_optimizer=False)) == {}
    config = runtime.SpeedConfig()
    assert runtime.optimizer_options(torch.optim.SGD, CPU, config) == {"fused": True}
    assert runtime.optimizer_options(torch.optim.AdamW, CPU, config) == {"fused": True}
    assert runtime.optimizer_options(torch.optim.LBFGS, CPU, config) == {}
    assert runtime.optimizer_options(torch.optim.SGD, CPU, runtime.SpeedConfig.plain()) == {}


def test_auto_precision_is_bf16_exactly_where_the_cpu_has_amx(monkeypatch):
    for present, amp in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda present=present: present)
        precision = runtime.training_precision(CPU, runtime.SpeedConfig())
        assert precision.amp == amp and (precision.reason == "amx_bf16") == present
        with runtime.autocast(CPU, precision):
            assert torch.is_autocast_enabled("cpu") == present
    assert runtime.training_precision(CPU, runtime.SpeedConfig(amp="off")) == runtime.Precision("fp32", "--amp off")
    assert runtime.training_precision(CPU, runtime.SpeedConfig(amp="bf16")) == runtime.Precision("bf16", "--amp bf16")
    assert runtime.training_precision(torch.device("cuda"), runtime.SpeedConfig()).amp == "bf16"


def test_speed_config_round_trips_and_ignores_unknown_keys():
    config = runtime.SpeedConfig(threads=1, fused=False)
    assert runtime.SpeedConfig.from_dict({**config.to_dict(), "future_switch": 1}) == config


@pytest.mark.slow
def test_train_throughput_quick_prints_the_ratio_table():
    bench = Path(__file__).resolve().parents[1] / "bench" / "train_throughput.py"
    done = subprocess.run([sys.executable, str(bench), "--quick", "--rounds", "1", "--steps", "1"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "ratio" in next(line for line in lines if line.startswith("case"))
    assert lines[-1].startswith("ratio=") and float(lines[-1].partition("=")[2]) > 0


_FAULTS_PER_TRAINING_STEP = """
import resource, sys, torch
from squeezelab import runtime
if sys.argv[1] == "keep":
    assert runtime.keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3))
x = torch.randn(16, 3, 224, 224)  # 50 MB activations: above any mmap threshold glibc adapts to
def step():
    model(x).square().mean().backward()
for _ in range(3):
    step()
before = faults()
for _ in range(2):
    step()
print((faults() - before) // 2)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_keep_freed_memory_stops_page_faults_in_repeated_training_steps():
    def faults(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", _FAULTS_PER_TRAINING_STEP, mode],
                              capture_output=True, text=True, timeout=120, check=True)
        return int(done.stdout)

    # The step's activations (50 MB each) are fresh pages every step by default (~200,000
    # faults per step); kept, the heap is reused (0 on most runs, a few thousand at worst).
    default = faults("default")
    assert default > 50_000
    assert faults("keep") < default / 10
