"""Plots of the design space (paper Figure 3 and Section 6) and of the peer comparison.

Figure 3 plots accuracy against model size, one marker per value of the swept metaparameter; here
the marker carries the mean over seeds and an error bar spanning min..max, so a reader sees
whether two points differ by more than the seed noise. Files are written atomically as PNG.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from squeezelab.utils.atomic import atomic_write_bytes

_LABELS = {"sr": "squeeze ratio SR", "pct3x3": "pct3x3 (share of 3x3 filters)", "base_e": "base_e",
           "incr_e": "incr_e", "freq": "freq"}
_FIELDS = {"sr": "squeeze_ratio", "pct3x3": "pct3x3", "base_e": "base_e", "incr_e": "incr_e", "freq": "freq"}


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(6, 4.2), dpi=110)


def _save(plt, fig, path: str | Path) -> Path:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def _error_bars(rows: Sequence[dict]) -> list[list[float]]:
    return [[100 * (r["accuracy_mean"] - r["accuracy_min"]) for r in rows],
            [100 * (r["accuracy_max"] - r["accuracy_mean"]) for r in rows]]


def plot_sweep(rows: Sequence[dict], sweep: str, path: str | Path) -> Path:
    """Accuracy (mean, min..max over seeds) vs model size in MB, each point labelled by its value."""
    plt, fig, ax = _figure()
    sizes = [r["size_bytes"] / 1e6 for r in rows]
    accs = [100 * r["accuracy_mean"] for r in rows]
    ax.errorbar(sizes, accs, yerr=_error_bars(rows), fmt="o-", capsize=3, color="tab:blue")
    for r, x, y in zip(rows, sizes, accs):
        ax.annotate(f"{r[_FIELDS[sweep]]:g}", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
    seeds = rows[0]["seeds"] if rows else 0
    ax.set_xlabel("model size (MB, fp32)")
    ax.set_ylabel(f"validation top-1 (%), mean of {seeds} seed(s)")
    ax.set_title(f"accuracy vs size, sweeping {_LABELS.get(sweep, sweep)}")
    ax.grid(alpha=0.3)
    return _save(plt, fig, path)


def plot_bypass(rows: Sequence[dict], _sweep: str, path: str | Path) -> Path:
    """Bar chart of accuracy per bypass kind (paper Table 3), with min..max over seeds."""
    plt, fig, ax = _figure()
    names = [r["bypass"] for r in rows]
    accs = [100 * r["accuracy_mean"] for r in rows]
    ax.bar(names, accs, yerr=_error_bars(rows), capsize=4, color=["tab:gray", "tab:blue", "tab:orange"][: len(rows)])
    for i, r in enumerate(rows):
        ax.text(i, accs[i], f"{accs[i]:.1f}%\n{r['size_bytes'] / 1e6:.2f} MB", ha="center", va="bottom", fontsize=8)
    low = min(accs) if accs else 0
    ax.set_ylim(max(0, low - 10), min(100, max(accs, default=100) + 8))
    ax.set_ylabel("validation top-1 (%)")
    ax.set_title("SqueezeNet with and without bypass")
    ax.grid(axis="y", alpha=0.3)
    return _save(plt, fig, path)


def plot_scatter(rows: Sequence[dict], x_key: str, x_label: str, path: str | Path, *, log_x: bool = True) -> Path:
    """Accuracy vs one cost column (size, latency) for the compared models, labelled by name."""
    plt, fig, ax = _figure()
    shown = [r for r in rows if r.get("accuracy") is not None and r.get(x_key) is not None]
    for r in shown:
        colour = "tab:red" if r["model"].startswith("squeezenet") else "tab:blue"
        ax.scatter(r[x_key], 100 * r["accuracy"], color=colour)
        ax.annotate(r["model"].removeprefix("tv/"), (r[x_key], 100 * r["accuracy"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("validation top-1 (%)")
    ax.set_title(f"accuracy vs {x_label.split(' (')[0]}")
    ax.grid(alpha=0.3, which="both")
    return _save(plt, fig, path)
