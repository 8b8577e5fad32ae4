"""Training curves and confusion matrices as PNG files (matplotlib, headless Agg backend)."""

from __future__ import annotations

import io
from pathlib import Path

from squeezelab.utils.atomic import atomic_write_bytes


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(*args, **kwargs)


def _save(plt, fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(history: list[dict], path: str | Path) -> None:
    """Loss and accuracy per epoch, train vs validation, side by side."""
    plt, (fig, (ax_loss, ax_acc)) = _figure(1, 2, figsize=(10, 4))
    epochs = [row["epoch"] for row in history]
    for key, label in (("train", "train"), ("val", "validation")):
        ax_loss.plot(epochs, [row[f"{key}_loss"] for row in history], marker="o", label=label)
        ax_acc.plot(epochs, [row[f"{key}_acc"] for row in history], marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    _save(plt, fig, Path(path))


def plot_confusion(result, path: str | Path) -> None:
    """The confusion matrix (rows: true class) with per-class precision and recall in the labels."""
    import numpy as np

    n = len(result.classes)
    size = min(4 + 0.45 * n, 24)
    plt, (fig, ax) = _figure(figsize=(size, size))
    matrix = np.asarray(result.confusion)
    ax.imshow(matrix, cmap="Blues")
    ticks = [f"{c['class']} (P {c['precision']:.2f} R {c['recall']:.2f})" for c in result.per_class]
    if n <= 40:
        ax.set_xticks(range(n), [c["class"] for c in result.per_class], rotation=90)
        ax.set_yticks(range(n), ticks)
        if n <= 20:
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true (precision / recall)", title=f"top-1 {result.top1:.4f}")
    fig.tight_layout()
    _save(plt, fig, Path(path))
