"""The Deep Compression pipeline: prune -> fine-tune -> quantize -> fine-tune -> encode (Han et al.,
2016, Figure 1), with an honest report: the accuracy after is measured on the model decoded from
the written bytes, not on the in-memory model.

Pruning is gradual, as the paper's iterative pruning (Section 2; Han et al., 2015, "Learning both
weights and connections", Section 3.3): `prune_steps` rounds, each removing more weights by
magnitude along the cubic schedule of Zhu & Gupta (2017) and then fine-tuning with the masks
held. Per layer, the `squeezenet` policy prunes the 3x3 expand layers (three quarters of the
weights) hardest and keeps the first conv, the classifier and the 1x1 layers denser, as the
released SqueezeNet model does (`PAPER_DENSITY`). After every pruning round and after weight
sharing the batch-norm statistics are measured again (`compress.batchnorm`): the stale ones cost
more accuracy than the pruning itself. For the file, batch norm is folded to scale and shift and
stored, with the other unshared tensors, as float16, and the JSON header is deflated.

Fine-tuning, evaluation and recalibration are passed in as functions so the pipeline works with
any trainer; `squeezelab compress` passes `squeezelab.train.fine_tune`,
`squeezelab.evaluate.evaluate` and `recalibrate_batch_norm_` on the training split.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable

from torch import nn

from squeezelab.compress.batchnorm import fold_batch_norm_
from squeezelab.compress.codec import LayerStats, decode, encode
from squeezelab.compress.config import LAYER_POLICIES, CompressConfig, PruneConfig, QuantConfig
from squeezelab.compress.prune import conv_and_linear, overall_density, prune, selected_layers
from squeezelab.compress.quantize import quantize_
from squeezelab.errors import SqueezelabError

FineTune = Callable[[nn.Module, int], None]  # (model, epochs): train in place
Evaluate = Callable[[nn.Module], float]  # model -> validation top-1 as a fraction
Calibrate = Callable[[nn.Module], None]  # model -> batch-norm statistics measured again, in place

# Density of each layer role relative to the 3x3 expand layers under the `squeezenet` policy:
# the few weights of the first conv and the classifier see every pixel / decide every class, and
# the 1x1 squeeze/expand layers are a fifth of the weights; all capped at 1.
ROLE_DENSITY_FACTOR = {"first": 6.25, "classifier": 3.75, "1x1": 2.5, "3x3": 1.0}


def layer_role(name: str, module: nn.Module, first: str) -> str:
    if name == first:
        return "first"
    if name.startswith("classifier") or isinstance(module, nn.Linear):
        return "classifier"
    return "1x1" if getattr(module, "kernel_size", (1, 1)) == (1, 1) else "3x3"


def policy_densities(model: nn.Module, sparsity_3x3: float, policy: str = "squeezenet") -> dict[str, float]:
    """{layer: fraction kept}: `1 - sparsity_3x3` everywhere (`uniform`), or for the 3x3 layers with
    the others kept denser by `ROLE_DENSITY_FACTOR` (`squeezenet`).

    >>> from squeezelab import create_model
    >>> d = policy_densities(create_model("squeezenet1_1", num_classes=10), 0.92)
    >>> d["features.0"], d["features.3.squeeze"], d["features.3.expand3x3"], d["classifier.1"]
    (0.5, 0.2, 0.08, 0.3)
    """
    if policy not in LAYER_POLICIES:
        raise SqueezelabError(f"layer policy must be one of {', '.join(LAYER_POLICIES)}, got {policy!r}")
    layers = selected_layers(model, conv_and_linear)
    first = next(iter(layers), "")
    density = 1.0 - sparsity_3x3
    if policy == "uniform":
        return {name: density for name in layers}
    return {name: round(min(1.0, density * ROLE_DENSITY_FACTOR[layer_role(name, m, first)]), 6) for name, m in layers.items()}


def gradual_densities(final: dict[str, float], step: int, steps: int) -> dict[str, float]:
    """Densities after pruning round `step` of `steps` on the cubic schedule (Zhu & Gupta, 2017):
    big cuts first, while many weights remain to take over, small ones at the end."""
    done = 1.0 - (1.0 - step / steps) ** 3
    return {name: 1.0 - (1.0 - d) * done for name, d in final.items()}


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
    calibrate: Calibrate | None = None,
    metadata: dict | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[bytes, CompressReport, nn.Module]:
    """Compress `model` in place; returns the .sqz bytes, the report and the decoded model.

    >>> from squeezelab import create_model
    >>> data, report, small = compress_model(create_model("squeezenet1_1", num_classes=10))
    >>> report.ratio > 30  # 3-bit, 3x3 layers 8% kept (no fine-tuning here, so no accuracy)
    True
    """
    start = time.perf_counter()
    original = fp32_bytes(model)
    acc_before = evaluate(model) if evaluate else None
    final = {**policy_densities(model, config.sparsity_3x3, config.layer_policy), **(config.densities or {})}
    for step in range(1, config.prune_steps + 1):
        prune(model, PruneConfig(sparsity=0.0, densities=gradual_densities(final, step, config.prune_steps)))
        log(f"pruning round {step}/{config.prune_steps}: {overall_density(model):.1%} of the weights kept")
        _recover(model, config.finetune_epochs, finetune, calibrate)
    acc_pruned = evaluate(model) if evaluate else None
    log(f"sharing weights: {config.bits}-bit codebooks" + (f", {config.fc_bits}-bit classifier" if config.fc_bits else ""))
    quantize_(model, QuantConfig(bits=config.bits, fc_bits=config.fc_bits))
    _recover(model, config.finetune_epochs, finetune, calibrate)
    if config.fold_batch_norm:
        fold_batch_norm_(model)
    data, layers = encode(model, gap_bits=config.gap_bits, raw_dtype=config.raw_dtype, deflate_header=True,
                          metadata={"compress": config.to_dict(), **(metadata or {})})
    decoded = decode(data, "<compressed>")
    acc_after = evaluate(decoded) if evaluate else None
    report = CompressReport(layers, original, len(data), acc_before, acc_pruned, acc_after,
                            time.perf_counter() - start, config.to_dict())
    return data, report, decoded


def _recover(model: nn.Module, epochs: int, finetune: FineTune | None, calibrate: Calibrate | None) -> None:
    """After the weights changed: batch-norm statistics measured again (fine-tuning starts from
    a working model), fine-tuning, and the statistics measured once more for the final weights."""
    if calibrate:
        calibrate(model)
    if finetune and epochs:
        finetune(model, epochs)
        if calibrate:
            calibrate(model)


def format_report(report: CompressReport) -> str:
    """The human-readable table: per layer density, bits and bytes, then the totals."""
    lines = [f"{'layer':<34} {'density':>8} {'bits':>5} {'bytes':>9}"]
    for s in report.layers:
        if s.kind == "shared":
            lines.append(f"{s.name:<34} {s.density:>8.1%} {s.bits:>5} {s.bytes:>9,}")
    raw = sum(s.bytes for s in report.layers if s.kind == "raw")
    bits = 16 if report.config.get("raw_dtype") == "float16" else 32
    lines.append(f"{'batch norm, biases, other tensors':<34} {'':>8} {bits:>5} {raw:>9,}")
    other = report.compressed_bytes - raw - sum(s.bytes for s in report.layers if s.kind == "shared")
    lines.append(f"{'header (deflated JSON) and checksum':<34} {'':>8} {'':>5} {other:>9,}")
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
