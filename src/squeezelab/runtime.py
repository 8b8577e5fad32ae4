"""Speed switches for training and inference, each chosen by measurement (bench/train_throughput.py).

Measured on a 2-core AVX-512/VNNI CPU (no BF16, no AMX), squeezenet1_1 224x224 batch 32, SGD,
ratios against a plain torchvision eager fp32 NCHW loop in the same run:

- keep_freed_memory: about 1.25-1.4x. glibc hands every allocation above its mmap threshold
  (SqueezeNet's activations are 1-100 MB) to the kernel as fresh pages and returns them on free,
  so each training step page-faults and zeroes its whole working set again (measured: 150,000
  minor faults and ~0.45 s of system time per step; with the switch, 0 faults and ~0 s).
- channels_last: about 1.3-1.45x. oneDNN's convolutions run natively on NHWC.
- fused_optimizer (`fused=True` SGD/Adam/AdamW): 2.4-3.7x faster optimizer steps than the default
  per-parameter loop (squeezenet1_1: SGD 0.9 vs 2.6 ms, AdamW 1.4 vs 5.2 ms). An optimizer step is
  ~0.5% of a training step, so the gain is small.
- fused (squeezelab.models.fused): weight gradients as im2col GEMMs split over threads, conv+ReLU
  in one kernel, a cheaper dropout draw, a global average whose backward keeps channels_last:
  with keep_freed_memory, 1.76x -> ~2.0-2.1x plain.
- bf16 autocast: about 2x fp32 where the CPU has AMX tile units (Intel Xeon since Sapphire
  Rapids: oneDNN runs its convolutions on them), 0.74x on the AVX-512 CPU above, which has no
  bf16 units. `amp="auto"` therefore trains in bf16 on CUDA and on CPUs with AMX-BF16, and in
  fp32 elsewhere (`training_precision`). Evaluation always runs in fp32.
- torch.compile: 0.5-0.8x, ~50 s to compile on 2 cores: not used.

The trainer, evaluation and the photo loader call configure_process, prepare_model,
prepare_batch, optimizer_options, training_precision, autocast and available_cores, and nothing
else, for speed; they sit on the ground floor (docs/ARCHITECTURE.md) because every layer above
may use them.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import inspect
import os
import sys

import torch
from torch import nn

from squeezelab.utils.config import JsonConfig


@dataclasses.dataclass(frozen=True)
class SpeedConfig(JsonConfig):
    """Switches that change speed, never results (beyond float rounding)."""

    channels_last: bool = True
    fused: bool = True  # squeezelab.models.fused kernels (SqueezeNet models only)
    fused_optimizer: bool = True  # fused=True SGD/Adam/AdamW steps: 2.4-3.7x faster on this CPU
    amp: str = "auto"  # "auto": bf16 autocast on CUDA and on CPUs with AMX-BF16 (`training_precision`); "off"; "bf16"
    threads: int | None = None  # None: one per available core
    flush_denormal: bool = False  # treat denormal floats as zero (no measured gain: off)
    keep_freed_memory: bool = True  # glibc: reuse freed activations instead of fresh pages

    @classmethod
    def plain(cls) -> "SpeedConfig":
        """Every switch off: the eager fp32 NCHW reference."""
        return cls(channels_last=False, fused=False, fused_optimizer=False, amp="off", flush_denormal=False,
                   keep_freed_memory=False)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_process(config: SpeedConfig) -> None:
    """One intra-op thread per core this process may use (more only oversubscribes), and the
    allocator and float settings. Process-wide: a benchmark's reference must run in its own process."""
    torch.set_num_threads(config.threads or available_cores())
    torch.set_flush_denormal(config.flush_denormal)
    if config.keep_freed_memory:
        keep_freed_memory()


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Make glibc serve every allocation from its heap and keep freed memory there for reuse.

    Why: above its mmap threshold glibc maps fresh zeroed pages for each allocation and unmaps
    them on free, so a training step that allocates the same activations every time pays a page
    fault per 4 KiB, every step. With mmap off and a 1 GiB trim threshold, the second step
    reuses the first step's memory. Cost: the process keeps its peak heap (about +15% resident
    for squeezenet1_1 at batch 32). Returns False where there is no glibc (macOS, musl): a no-op.
    Once set it stays for the process's lifetime.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def prepare_model(model: nn.Module, device: torch.device, config: SpeedConfig) -> nn.Module:
    """Move the model to its device and memory format, and switch on its fused path if it has one.

    The fused path only changes how a SqueezeNet computes, not its parameters, so state dicts
    and checkpoints are the same either way.
    """
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if hasattr(model, "set_fused"):
        model.set_fused(config.fused)
    return model


def prepare_batch(x: torch.Tensor, device: torch.device, config: SpeedConfig) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if config.channels_last else x


def optimizer_options(optimizer_class: type, device: torch.device, config: SpeedConfig) -> dict:
    """Extra keyword arguments for `optimizer_class(params, lr=..., **options)`.

    `fused=True` where the optimizer accepts it (SGD, Adam, AdamW in torch >= 2.4, CPU and CUDA);
    otherwise nothing, so any optimizer still constructs.
    """
    if not config.fused_optimizer or device.type not in ("cpu", "cuda"):
        return {}
    if "fused" in inspect.signature(optimizer_class.__init__).parameters:
        return {"fused": True}
    return {}


@dataclasses.dataclass(frozen=True)
class Precision:
    """What training computes in: `amp` "bf16" (autocast) or "fp32", and why (`reason`: the CPU
    feature found, the device, or the flag). Weights, batch-norm statistics, the loss and the
    optimizer stay fp32 either way."""

    amp: str
    reason: str

    @property
    def autocast(self) -> bool:
        return self.amp == "bf16"


def has_amx_bf16() -> bool:
    """True on a CPU with AMX tile units (Intel Xeon since Sapphire Rapids), where oneDNN runs
    bf16 convolutions about twice as fast as fp32 ones."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(check is not None and check() and torch.backends.mkldnn.is_available())


def training_precision(device: torch.device, config: SpeedConfig) -> Precision:
    """bf16 autocast where it pays: CUDA, and CPUs with AMX-BF16; fp32 elsewhere (bf16 autocast
    measured 0.74x on an AVX-512 CPU without bf16 units). `--amp off|bf16` decides by itself."""
    if config.amp == "off":
        return Precision("fp32", "--amp off")
    if config.amp == "bf16":
        return Precision("bf16", "--amp bf16")
    if device.type == "cuda":
        return Precision("bf16", "cuda")
    if device.type == "cpu" and has_amx_bf16():
        return Precision("bf16", "amx_bf16")
    return Precision("fp32", f"no AMX-BF16 on this {device.type}")


def autocast(device: torch.device, precision: Precision):
    """The training step's autocast context: bf16 where `precision` says so, a no-op elsewhere."""
    if not precision.autocast:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
