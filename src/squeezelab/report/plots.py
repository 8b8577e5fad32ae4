"""Training curves, confusion matrices and weight histograms as PNG files (matplotlib's Agg canvas).

Each function draws only the numbers it is given and returns the Figure it saved, so a caller (or
a test) can read back what was drawn. Figures are built without pyplot: no global state, nothing
to close, safe from worker threads.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from squeezelab.utils.atomic import atomic_write_bytes

TRAIN_STYLE = {"color": "tab:blue", "linestyle": "-", "marker": "o", "label": "train"}
# Dashed with hollow squares, so a validation line equal to the train line still shows both.
VAL_STYLE = {"color": "tab:orange", "linestyle": "--", "marker": "s", "markerfacecolor": "none",
             "markersize": 8, "label": "validation"}


def new_figure(nrows: int = 1, ncols: int = 1, *, sharex: bool = False, **kwargs):
    """A Figure (`kwargs`: figsize, dpi) on an Agg canvas and its axes, as plt.subplots returns them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, sharex=sharex)


def save_figure(fig, path: str | Path):
    """Write `fig` as a PNG atomically and return it (the caller may inspect what it drew)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")  # at the figure's own dpi, the one labels were placed at
    atomic_write_bytes(path, buffer.getvalue())
    return fig


def integer_ticks(axis) -> None:
    """Ticks only on whole numbers (epochs): matplotlib would put 1.25, 1.5, ... on a 3-epoch run."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def plot_curves(history: Sequence[dict], path: str | Path):
    """Loss and accuracy per epoch, train vs validation, side by side; the best epoch is marked.

    >>> plot_curves([{"epoch": 1, "train_loss": 2.0, "val_loss": 1.5, "train_acc": 0.3, "val_acc": 0.4}],
    ...             "/tmp/curves.png")  # doctest: +SKIP
    """
    from matplotlib.ticker import PercentFormatter

    fig, (ax_loss, ax_acc) = new_figure(1, 2, figsize=(10, 4.2))
    epochs = [row["epoch"] for row in history]
    for style, key in ((TRAIN_STYLE, "train"), (VAL_STYLE, "val")):
        ax_loss.plot(epochs, [row[f"{key}_loss"] for row in history], **style)
        ax_acc.plot(epochs, [row[f"{key}_acc"] for row in history], **style)
    losses = [row[f"{k}_loss"] for row in history for k in ("train", "val")]
    if losses and min(losses) > 0 and max(losses) / min(losses) > 20:
        ax_loss.set_yscale("log")  # a diverged first epoch would flatten every later one to the floor
        readable_log_ticks(ax_loss.yaxis, min(losses), max(losses))
    if history:
        best = max(history, key=lambda row: row["val_acc"])
        ax_acc.axvline(best["epoch"], color="0.6", linestyle=":", linewidth=1)
        ax_acc.set_title(f"accuracy (best validation {best['val_acc']:.2%}, epoch {best['epoch']})")
    else:
        ax_acc.set_title("accuracy")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    ax_acc.yaxis.set_major_formatter(PercentFormatter(1.0))
    for ax in (ax_loss, ax_acc):
        integer_ticks(ax.xaxis)
        ax.grid(alpha=0.3)
    handles, labels = ax_loss.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False)  # above the data, not on it
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return save_figure(fig, path)


def readable_log_ticks(axis, low: float, high: float) -> None:
    """Plain-number ticks on a log axis, enough of them (>= 3) to read a value off it.

    matplotlib labels only powers of ten, so a 7-9 ms range gets no label at all or minor labels
    like "8x10^0" that run into each other; 1-2-5 steps (or every digit on a short range) do not.
    """
    import math

    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

    # Within a factor of ~3 a log axis is nearly linear: evenly spaced round numbers read best.
    locator = MaxNLocator(nbins=4, min_n_ticks=3)
    for steps in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
                 for m in steps if low <= m * 10.0 ** e <= high]
        if len(ticks) >= 3:
            locator = FixedLocator(ticks)
            break
    axis.set_major_locator(locator)
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.3g}"))


def plot_confusion(result, path: str | Path):
    """The confusion matrix (rows: true class) with per-class precision and recall in the labels."""
    import numpy as np

    n = len(result.classes)
    size = min(4 + 0.45 * n, 24)
    fig, ax = new_figure(figsize=(size + 1, size), layout="constrained")
    matrix = np.asarray(result.confusion)
    image = ax.imshow(matrix, cmap="Blues")
    if n > 20:  # too many cells to print their counts: the colour scale carries them
        fig.colorbar(image, ax=ax, fraction=0.04, label="images")
    if n <= 40:
        names = [str(c["class"]) for c in result.per_class]
        ax.set_xticks(range(n), names, rotation=90 if max(map(len, names), default=0) > 3 else 0)
        ax.set_yticks(range(n), [f"{name}  P {c['precision']:.2f} R {c['recall']:.2f}"
                                 for name, c in zip(names, result.per_class)])
        if n <= 20:
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set(xlabel="predicted class", ylabel="true class (precision P, recall R)",
           title=f"top-1 {result.top1:.2%} on {int(matrix.sum()):,} validation images")
    return save_figure(fig, path)


def _largest_matrix(state: dict) -> str:
    return max(state, key=lambda k: state[k].numel() if k.endswith("weight") and state[k].dim() > 1 else 0)


def plot_weight_distribution(before: dict, after: dict, path: str | Path, layer: str | None = None):
    """One layer's weights before and after compression (the paper's Figure 4 style: a dense bell
    curve becomes a few shared values, the small ones pruned away): every shared value is its own
    bar, labelled with its count, so two values never merge into one bar at the plot's resolution.

    >>> plot_weight_distribution(model.state_dict(), decoded.state_dict(), "/tmp/w.png")  # doctest: +SKIP
    """
    import numpy as np

    layer = layer or _largest_matrix(before)
    w0 = before[layer].detach().flatten().cpu().double().numpy()
    w1 = after[layer].detach().flatten().cpu().double().numpy()
    values, counts = np.unique(w1[w1 != 0], return_counts=True)
    fig, (ax0, ax1) = new_figure(1, 2, figsize=(11, 4), sharex=True)
    ax0.hist(w0, bins=200, color="tab:blue")
    ax0.set_title(f"{layer}: before ({len(w0):,} weights)")
    span = float(w0.max() - w0.min()) or 1.0
    gap = float(np.diff(values).min()) if len(values) > 1 else span
    ax1.bar(values, counts, width=min(0.6 * gap, span / 60), color="tab:green")
    if len(values) <= 24:
        for v, c in zip(values, counts):
            ax1.annotate(f"{c:,}", (v, c), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
    ax1.margins(y=0.12)
    pruned = int((w1 == 0).sum())
    ax1.set_title(f"after: {len(values)} shared values, {len(w1) - pruned:,} kept "
                  f"({1 - pruned / max(len(w1), 1):.0%}); {pruned:,} zeros not drawn", fontsize=10)
    for ax in (ax0, ax1):
        ax.set_xlabel("weight value")
        ax.grid(alpha=0.3, axis="y")
    ax0.set_ylabel("count")
    fig.tight_layout()
    return save_figure(fig, path)
