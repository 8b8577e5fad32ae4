"""The text report and the weight histogram of a compression run (`squeezelab compress`)."""

from __future__ import annotations

import os
from pathlib import Path


def format_compression_report(report) -> str:
    """The human-readable table of a `CompressReport`: per layer density, bits and bytes, then the totals."""
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
