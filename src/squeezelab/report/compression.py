"""The text report of a compression run (`squeezelab compress`); its weight histogram is report.plots."""

from __future__ import annotations


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
    if getattr(report, "top1_agreement", None) is not None:
        lines.append(f"top-1 agreement with the uncompressed model {report.top1_agreement:.2%} on {report.held_out_images:,} "
                     f"held-out images (calibrated on {report.calibration_images:,} others; no labels, so no accuracy)")
    return "\n".join(lines)
