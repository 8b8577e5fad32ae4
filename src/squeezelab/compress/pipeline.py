"""The Deep Compression pipeline: prune -> fine-tune -> quantize -> fine-tune -> encode (Han et al.,
2016, Figure 1), with an honest report: the accuracy after is measured on the model decoded from
the written bytes, not on the in-memory model.

Fine-tuning and evaluation are passed in as functions so the pipeline works with any trainer;
`squeezelab compress` passes `squeezelab.train.fine_tune` and `squeezelab.evaluate.evaluate`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable

from torch import nn

from squeezelab.compress.codec import DEFAULT_GAP_BITS, LayerStats, decode, encode
from squeezelab.compress.prune import PruneConfig, prune
from squeezelab.compress.quantize import QuantConfig, quantize_
from squeezelab.errors import SqueezelabError

FineTune = Callable[[nn.Module, int], None]  # (model, epochs): train in place
Evaluate = Callable[[nn.Module], float]  # model -> validation top-1 as a fraction


@dataclasses.dataclass(frozen=True)
class CompressConfig:
    """Settings of one compression run; the defaults are the paper's SqueezeNet run (a third of
    the weights kept, 8-bit shared weights, 4-bit index gaps)."""

    sparsity: float = 0.67
    bits: int = 8
    fc_bits: int | None = None
    densities: dict[str, float] | None = None
    finetune_epochs: int = 1
    gap_bits: int = DEFAULT_GAP_BITS

    def __post_init__(self):
        if self.finetune_epochs < 0:
            raise SqueezelabError(f"--finetune-epochs must be >= 0, got {self.finetune_epochs}")
        PruneConfig(sparsity=self.sparsity, densities=self.densities)  # validates
        QuantConfig(bits=self.bits, fc_bits=self.fc_bits)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class CompressReport:
    """Sizes in bytes, accuracies as fractions (None when no data was given)."""

    layers: list[LayerStats]
    original_bytes: int
    compressed_bytes: int
    acc_before: float | None
    acc_pruned: float | None
    acc_after: float | None
    seconds: float
    config: dict

    @property
    def ratio(self) -> float:
        return self.original_bytes / max(1, self.compressed_bytes)

    def to_dict(self) -> dict:
        layers = [
            {"name": s.name, "kind": s.kind, "elements": s.elements, "density": round(s.density, 4), "bits": s.bits, "bytes": s.bytes}
            for s in self.layers
        ]
        fields = dataclasses.asdict(self)
        fields.pop("layers")
        return {**fields, "ratio": round(self.ratio, 2), "layers": layers}


def fp32_bytes(model: nn.Module) -> int:
    """Size of the model's floating-point state dict at 4 bytes a value (the paper's baseline)."""
    return sum(t.numel() * 4 for t in model.state_dict().values() if t.is_floating_point())


def compress_model(
    model: nn.Module,
    config: CompressConfig = CompressConfig(),
    *,
    finetune: FineTune | None = None,
    evaluate: Evaluate | None = None,
    metadata: dict | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[bytes, CompressReport, nn.Module]:
    """Compress `model` in place; returns the .sqz bytes, the report and the decoded model.

    >>> from squeezelab import create_model
    >>> data, report, small = compress_model(create_model("squeezenet1_1", num_classes=10))
    >>> report.ratio > 5  # 8-bit, a third kept: about 9x (the paper: 4.8 MB -> 0.66 MB, 7.3x)
    True
    """
    start = time.perf_counter()
    original = fp32_bytes(model)
    acc_before = evaluate(model) if evaluate else None
    log(f"pruning to {1 - config.sparsity:.0%} density")
    prune(model, PruneConfig(sparsity=config.sparsity, densities=config.densities))
    if finetune and config.finetune_epochs:
        finetune(model, config.finetune_epochs)
    acc_pruned = evaluate(model) if evaluate else None
    log(f"sharing weights: {config.bits}-bit codebooks" + (f", {config.fc_bits}-bit classifier" if config.fc_bits else ""))
    quantize_(model, QuantConfig(bits=config.bits, fc_bits=config.fc_bits))
    if finetune and config.finetune_epochs:
        finetune(model, config.finetune_epochs)
    data, layers = encode(model, gap_bits=config.gap_bits, metadata={"compress": config.to_dict(), **(metadata or {})})
    decoded = decode(data, "<compressed>")
    acc_after = evaluate(decoded) if evaluate else None
    report = CompressReport(layers, original, len(data), acc_before, acc_pruned, acc_after,
                            time.perf_counter() - start, config.to_dict())
    return data, report, decoded


def format_report(report: CompressReport) -> str:
    """The human-readable table: per layer density, bits and bytes, then the totals."""
    lines = [f"{'layer':<34} {'density':>8} {'bits':>5} {'bytes':>9}"]
    for s in report.layers:
        if s.kind == "shared":
            lines.append(f"{s.name:<34} {s.density:>8.1%} {s.bits:>5} {s.bytes:>9,}")
    raw = sum(s.bytes for s in report.layers if s.kind == "raw")
    lines.append(f"{'biases and other tensors (fp32)':<34} {'':>8} {'32':>5} {raw:>9,}")
    lines.append(f"fp32 size {report.original_bytes:,} B -> compressed {report.compressed_bytes:,} B ({report.ratio:.1f}x smaller)")
    if report.acc_before is not None:
        lines.append(
            f"accuracy before {report.acc_before:.2%}, after pruning {report.acc_pruned:.2%}, "
            f"after compression (decoded file) {report.acc_after:.2%}"
        )
    return "\n".join(lines)


def plot_weight_distribution(before: dict, after: dict, path: str | os.PathLike, layer: str | None = None) -> Path:
    """Histograms of one layer's weights before and after compression (the paper's Figure 4
    style: a dense bell curve becomes a few shared values with the small ones pruned away)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from squeezelab.utils.atomic import atomic_open

    layer = layer or max(before, key=lambda k: before[k].numel() if k.endswith("weight") and before[k].dim() > 1 else 0)
    w0 = before[layer].detach().flatten().cpu().numpy()
    w1 = after[layer].detach().flatten().cpu().numpy()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharex=True)
    axes[0].hist(w0, bins=200, color="tab:blue")
    axes[0].set_title(f"{layer}: before ({len(w0):,} weights)")
    values, counts = __import__("numpy").unique(w1[w1 != 0], return_counts=True)
    axes[1].bar(values, counts, width=(w0.max() - w0.min()) / 400, color="tab:green")
    axes[1].set_title(f"after: {(w1 != 0).mean():.0%} kept, {len(values)} shared values")
    for ax in axes:
        ax.set_xlabel("weight value")
    axes[0].set_ylabel("count")
    fig.tight_layout()
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)
    return path
