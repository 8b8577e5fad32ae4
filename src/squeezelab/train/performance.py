"""Speed switches for training and inference, each chosen by measurement (see bench/).

Measured on this project's 2-core AVX-512/VNNI CPU (no BF16, no AMX): channels_last is about
1.45x faster than NCHW for SqueezeNet training; bf16 autocast (0.74x) and torch.compile (0.5-0.8x)
are slower, so they default to off on CPU and on for CUDA where they pay.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class SpeedConfig:
    """Switches that change speed, never results (beyond float rounding)."""

    channels_last: bool = True
    amp: str = "auto"  # "auto": bf16 autocast on CUDA only; "off"; "bf16"
    threads: int | None = None  # None: one per available core

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SpeedConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_threads(config: SpeedConfig) -> None:
    torch.set_num_threads(config.threads or available_cores())


def prepare_model(model: nn.Module, device: torch.device, config: SpeedConfig) -> nn.Module:
    """Move the model to its device and memory format."""
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def prepare_batch(x: torch.Tensor, device: torch.device, config: SpeedConfig) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if config.channels_last else x


def autocast(device: torch.device, config: SpeedConfig):
    """bf16 autocast where it pays (CUDA), a no-op context elsewhere."""
    use = config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda")
    if not use:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
