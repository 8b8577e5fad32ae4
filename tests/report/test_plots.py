"""Run plots draw the numbers they are given, on whole-number epochs, with every line visible."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from squeezelab.report.plots import plot_confusion, plot_curves, plot_weight_distribution, readable_log_ticks

# The digits run's first three epochs: a diverged first validation loss, then equal accuracies.
HISTORY = [{"epoch": e, "train_loss": tl, "val_loss": vl, "train_acc": ta, "val_acc": va}
           for e, tl, vl, ta, va in [(1, 2.27, 14.16, 0.14, 0.10), (2, 1.54, 1.08, 0.62, 0.62),
                                     (3, 0.90, 0.40, 0.87, 0.91)]]


def _tick_labels(axis) -> list[str]:
    """The tick labels drawn inside the axis limits."""
    low, high = sorted(axis.get_view_interval())
    return [t.get_text() for t, v in zip(axis.get_ticklabels(), axis.get_ticklocs()) if low <= v <= high]


def test_curves_draw_the_history_on_integer_epochs(tmp_path):
    fig = plot_curves(HISTORY, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    fig.draw_without_rendering()
    ax_loss, ax_acc = fig.axes
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
        lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
        assert list(lines["train"].get_xdata()) == [1, 2, 3]
        assert list(lines["train"].get_ydata()) == [r[f"train_{metric}"] for r in HISTORY]
        assert list(lines["validation"].get_ydata()) == [r[f"val_{metric}"] for r in HISTORY]
        labels = _tick_labels(ax.xaxis)
        assert labels and all(label.lstrip("\N{MINUS SIGN}-").isdigit() for label in labels), labels
    train, val = (line for line in ax_acc.get_lines() if line.get_label() in ("train", "validation"))
    # Equal values must not hide one line under the other: the styles differ.
    assert (train.get_linestyle(), train.get_marker()) != (val.get_linestyle(), val.get_marker())
    assert ax_loss.get_yscale() == "log"  # 14.16 against 0.40: a linear axis flattens the later epochs
    assert ax_loss.get_legend() is None and ax_acc.get_legend() is None and len(fig.legends) == 1


def test_curves_of_many_epochs_still_tick_whole_numbers(tmp_path):
    history = [{**HISTORY[-1], "epoch": e} for e in range(1, 8)]
    fig = plot_curves(history, tmp_path / "c.png")
    fig.draw_without_rendering()
    ticks = [v for v in fig.axes[0].get_xticks() if 1 <= v <= 7]
    assert ticks and all(float(v).is_integer() for v in ticks)
    assert fig.axes[0].get_yscale() == "linear"


@pytest.mark.parametrize("low, high", [(7.3, 8.4), (4.9, 244.4), (166.0, 678.0), (0.02, 0.09)])
def test_log_ticks_are_plain_numbers_and_at_least_three(low, high):
    from squeezelab.report.plots import new_figure

    fig, ax = new_figure()
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    readable_log_ticks(ax.xaxis, low, high)
    fig.draw_without_rendering()
    labels = _tick_labels(ax.xaxis)
    assert len(labels) >= 3, labels
    assert all(label and "10^" not in label and "times" not in label for label in labels), labels
    assert [float(x) for x in labels] == sorted(float(x) for x in labels)


def test_confusion_draws_the_matrix_and_its_total(tmp_path):
    sums = np.array([[5, 1, 0], [0, 4, 2], [1, 0, 7]])
    per_class = [{"class": c, "precision": 0.5, "recall": 0.5} for c in ("cat", "dog", "fox")]
    result = SimpleNamespace(classes=["cat", "dog", "fox"], confusion=sums.tolist(), per_class=per_class, top1=0.8)
    fig = plot_confusion(result, tmp_path / "confusion.png")
    ax = fig.axes[0]
    assert np.array_equal(ax.get_images()[0].get_array(), sums)
    cells = [t.get_text() for t in ax.texts]
    assert cells == [str(v) for v in sums.flatten().tolist()]
    assert "on 20 validation images" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "fox"]


def test_weights_plot_has_one_bar_per_shared_value_with_its_count(tmp_path):
    before = {"conv.weight": torch.randn(16, 8, 3, 3), "conv.bias": torch.randn(16)}
    # Two shared values close together (as a 2-entry codebook gives) and most weights pruned.
    values = torch.tensor([0.0, -0.021, 0.019])
    after = {"conv.weight": values[torch.randint(0, 3, (16, 8, 3, 3))], "conv.bias": before["conv.bias"]}
    fig = plot_weight_distribution(before, after, tmp_path / "weights.png")
    assert (tmp_path / "weights.png").read_bytes()[:4] == b"\x89PNG"
    ax_after = fig.axes[1]
    bars = ax_after.containers[0]
    kept = after["conv.weight"].flatten()
    expected = {v: int((kept == v).sum()) for v in (-0.021, 0.019)}
    drawn = sorted((bar.get_x() + bar.get_width() / 2, bar.get_height()) for bar in bars)
    assert [c for _, c in drawn] == [expected[-0.021], expected[0.019]]
    assert [x for x, _ in drawn] == pytest.approx([-0.021, 0.019], abs=1e-6)
    # The two bars are apart: neither covers the other's centre.
    left, right = sorted(bars, key=lambda b: b.get_x())
    assert left.get_x() + left.get_width() < right.get_x()
    assert "2 shared values" in ax_after.get_title()
    assert sorted(t.get_text() for t in ax_after.texts) == sorted(f"{c:,}" for c in expected.values())
