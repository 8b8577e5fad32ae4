"""Per-layer output shape, parameters, MACs and bytes, in the form of the paper's Table 1.

Shapes come from forward hooks and MACs from PyTorch's own FLOP counter on a real forward pass of
the real model (a multiply-accumulate is two FLOPs), so the figures follow whatever the model
actually computes, peers included, rather than formulas typed by hand.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from squeezelab.errors import SqueezelabError
from squeezelab.models.fire import Fire

# Layers that neither hold parameters nor change shape: left out of the table, as in the paper.
_SILENT = (nn.ReLU, nn.ReLU6, nn.Dropout, nn.Identity, nn.Flatten, nn.Hardswish, nn.Hardsigmoid, nn.SiLU)


@dataclasses.dataclass
class LayerRow:
    name: str
    type: str
    output_shape: list[int]
    params: int
    macs: int
    bytes: int
    s1x1: int | None = None
    e1x1: int | None = None
    e3x3: int | None = None


@dataclasses.dataclass
class Summary:
    model: str
    input_size: int
    rows: list[LayerRow]
    total_params: int
    total_macs: int
    total_bytes: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def format_table(self) -> str:
        header = f"{'layer':<16}{'type':<18}{'output':>16}{'s1x1':>6}{'e1x1':>6}{'e3x3':>6}{'params':>12}{'MACs':>15}{'bytes':>12}"
        lines = [header, "-" * len(header)]
        for r in self.rows:
            shape = "x".join(str(d) for d in r.output_shape)
            fire = [str(v) if v is not None else "" for v in (r.s1x1, r.e1x1, r.e3x3)]
            lines.append(
                f"{r.name:<16}{r.type:<18}{shape:>16}{fire[0]:>6}{fire[1]:>6}{fire[2]:>6}"
                f"{r.params:>12,}{r.macs:>15,}{r.bytes:>12,}"
            )
        lines.append("-" * len(header))
        lines.append(
            f"{'total':<70}{self.total_params:>12,}{self.total_macs:>15,}{self.total_bytes:>12,}"
        )
        lines.append(f"{self.total_macs / 1e9:.3f} GMACs, {self.total_params / 1e6:.3f} M params, "
                     f"{self.total_bytes / 2**20:.2f} MiB at {self.input_size}x{self.input_size}")
        return "\n".join(lines)


def _row_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Fire modules as one row each, and the leaves outside Fire that hold weights or reshape."""
    rows, inside_fire = [], []
    for name, module in model.named_modules():
        if any(name.startswith(prefix + ".") for prefix in inside_fire):
            continue
        if isinstance(module, Fire):
            inside_fire.append(name)
            rows.append((name, module))
        elif not list(module.children()) and not isinstance(module, _SILENT) and name:
            rows.append((name, module))
    return rows


def _nbytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def summarize(model: nn.Module, input_size: int = 224, *, in_chans: int = 3) -> Summary:
    """Table 1 of the paper for any model: one row per layer, with totals.

    >>> from squeezelab import create_model
    >>> s = summarize(create_model("squeezenet1_1"), 224)
    >>> round(s.total_macs / 1e9, 2)
    0.35
    """
    minimum = getattr(model, "min_input_size", 1)
    if input_size < minimum:
        raise SqueezelabError(f"input size {input_size} is too small for this model: the minimum is {minimum}")
    names = getattr(model, "layer_names", {})
    shapes: dict[str, list[int]] = {}
    rows = _row_modules(model)
    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, list(o.shape[1:])))
        for name, module in rows
    ]
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(torch.zeros(1, in_chans, input_size, input_size))
    except RuntimeError as exc:
        raise SqueezelabError(f"input size {input_size} does not fit this model: {str(exc).splitlines()[0]}") from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    flops = counter.get_flop_counts()
    root = type(model).__name__
    table = []
    for name, module in rows:
        fire = module if isinstance(module, Fire) else None
        table.append(
            LayerRow(
                name=names.get(name, name),
                type=type(module).__name__,
                output_shape=shapes.get(name, []),
                params=sum(p.numel() for p in module.parameters()),
                macs=sum(flops.get(f"{root}.{name}", {}).values()) // 2,
                bytes=_nbytes(module),
                s1x1=fire.squeeze.out_channels if fire else None,
                e1x1=fire.expand1x1.out_channels if fire else None,
                e3x3=fire.expand3x3.out_channels if fire else None,
            )
        )
    return Summary(
        model=model.record.name if hasattr(model, "record") else root,
        input_size=input_size,
        rows=table,
        total_params=sum(p.numel() for p in model.parameters()),
        total_macs=counter.get_total_flops() // 2,
        total_bytes=_nbytes(model),
    )


def summarize_run(run_dir: str | os.PathLike) -> Summary | None:
    """Table 1 for the model of a run folder, rebuilt from its config.json; None when the folder
    has no config.json or its model cannot be rebuilt (a report then leaves the section out).

    >>> summarize_run("runs/latest").total_params  # doctest: +SKIP
    """
    from squeezelab.models import create_model

    try:
        config = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict) or "name" not in model:
        return None
    size = (config.get("data") or {}).get("image_size") or (config.get("preprocessing") or {}).get("crop") or 224
    try:
        return summarize(create_model(model["name"], **model.get("options", {})), int(size))
    except (SqueezelabError, TypeError, ValueError):
        return None
