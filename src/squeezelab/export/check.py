"""What every non-ONNX export shares: a clear error when its runtime is missing, and the check of
an exported model against PyTorch on real images (max abs logit difference, top-1 agreement)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from squeezelab.errors import SqueezelabError

EXTRA = "deploy"


def import_runtime(module: str, purpose: str):
    """`import module`, or one line naming the optional extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SqueezelabError(f"{purpose} needs the '{module}' package: pip install squeezelab[{EXTRA}]") from None


def claim_weights_file(path: Path, other_suffix: str) -> None:
    """OpenVINO (m.xml) and ncnn (m.param) both keep their weights in m.bin: refuse to overwrite
    the other format's weights."""
    other = path.with_suffix(other_suffix)
    if other.exists():
        raise SqueezelabError(f"{path.with_suffix('.bin')} holds the weights of {other}; write {path.name} under another name")


def compare_with_torch(model: nn.Module, run: Callable[[np.ndarray], np.ndarray], batches: list[torch.Tensor],
                       what: str) -> dict:
    """Run `run` (float32 NCHW array -> logits) and the torch `model` on the same batches:
    {max_abs_diff, top1_agreement, images, checked_on}."""
    model = model.eval().float()
    diff, same, total = 0.0, 0, 0
    for batch in batches:
        with torch.inference_mode():
            expected = model(batch.float()).numpy()
        got = np.asarray(run(np.ascontiguousarray(batch.float().numpy())))
        diff = max(diff, float(np.abs(got - expected).max()))
        same += int((got.argmax(1) == expected.argmax(1)).sum())
        total += len(batch)
    return {"max_abs_diff": diff, "top1_agreement": same / total if total else float("nan"), "images": total,
            "checked_on": f"{total} {what} image(s)"}


def seeded_inputs(input_size: int, count: int = 2) -> list[torch.Tensor]:
    """Stand-in check inputs when no real images were given (the report says so)."""
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(count, 3, input_size, input_size, generator=generator)]
