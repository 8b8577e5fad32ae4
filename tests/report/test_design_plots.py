"""Design-space and comparison plots: the run's own numbers, labels inside the axes and apart."""

from __future__ import annotations

import itertools

import pytest

from squeezelab.report.design_plots import plot_bypass, plot_scatter, plot_sweep

# compare_224's sizes and latencies with accuracies that crowd the middle, as three epochs give.
PEERS = [("squeezenet1_0", 4.99, 678.5, 0.897), ("squeezenet1_1", 4.94, 369.6, 0.747),
         ("tv/mobilenet_v2", 14.16, 366.1, 0.799), ("tv/mobilenet_v3_small", 10.22, 166.6, 0.81),
         ("tv/shufflenet_v2_x1_0", 9.18, 278.9, 0.80), ("tv/alexnet", 244.4, 401.8, 0.76)]
ROWS = [{"model": m, "size_mb": s, "latency_ms": ms, "accuracy": a} for m, s, ms, a in PEERS]


def _sweep_rows(values, sizes, accs, seeds=1):
    return [{"squeeze_ratio": v, "size_bytes": s * 1e6, "accuracy_mean": a, "accuracy_min": a - 0.01 * (seeds > 1),
             "accuracy_max": a + 0.01 * (seeds > 1), "seeds": seeds, "bypass": b}
            for v, s, a, b in zip(values, sizes, accs, ("none", "simple", "complex", "x", "y"))]


def _assert_labels_readable(fig, texts):
    """Every label inside its axes and no two labels overlapping, measured by the renderer."""
    renderer = fig.canvas.get_renderer()
    frame = fig.axes[0].get_window_extent(renderer)
    boxes = [t.get_window_extent(renderer) for t in texts]
    for text, box in zip(texts, boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, text.get_text()
    for (a, box_a), (b, box_b) in itertools.combinations(zip(texts, boxes), 2):
        assert not box_a.overlaps(box_b), (a.get_text(), b.get_text())


@pytest.mark.parametrize("key", ["size_mb", "latency_ms"])
def test_scatter_draws_each_model_with_a_readable_label(tmp_path, key):
    fig = plot_scatter(ROWS, key, "cost", tmp_path / "scatter.png")
    assert (tmp_path / "scatter.png").read_bytes()[:4] == b"\x89PNG"
    ax = fig.axes[0]
    drawn = sorted((round(float(x), 6), round(float(y), 6)) for c in ax.collections for x, y in c.get_offsets())
    assert drawn == sorted((round(r[key], 6), round(100 * r["accuracy"], 6)) for r in ROWS)
    assert sorted(t.get_text() for t in ax.texts) == sorted(m.removeprefix("tv/") for m, *_ in PEERS)
    _assert_labels_readable(fig, ax.texts)
    low, high = ax.get_xlim()
    assert len([v for v in ax.get_xticks() if low <= v <= high]) >= 3
    legend = ax.get_legend()
    assert legend is not None and legend.get_window_extent().x0 >= ax.get_window_extent().x1  # outside the data


def test_a_label_pushed_away_from_its_point_gets_a_line_to_it(tmp_path):
    """The CIFAR-10 peers (docs/results.md): seven points crowd 2-10 MB, so some labels land
    tens of points away; without a line a reader cannot tell which point is whose."""
    from squeezelab.report.design_plots import LEADER_POINTS

    crowded = [("squeezenet_cifar", 2.75, 68.15), ("squeezenet1_0", 2.95, 63.07), ("squeezenet1_1", 2.95, 61.43),
               ("tv/alexnet", 228.1, 30.9), ("tv/mobilenet_v2", 9.08, 62.77), ("tv/mobilenet_v3_small", 6.16, 63.07),
               ("tv/shufflenet_v2_x1_0", 5.12, 59.92)]
    rows = [{"model": m, "size_mb": mb, "latency_ms": 1.0, "accuracy": a / 100} for m, mb, a in crowded]
    ax = plot_scatter(rows, "size_mb", "cost", tmp_path / "scatter.png").axes[0]
    far = [t for t in ax.texts if max(abs(v) for v in t.xyann) > LEADER_POINTS]
    assert far, "expected the crowded points to push a label away"
    assert all(t.arrow_patch is not None for t in far)
    assert all(t.arrow_patch is None for t in ax.texts if t not in far)


def test_scatter_over_a_narrow_latency_range_still_has_ticks(tmp_path):
    rows = [{"model": "squeezenet1_1", "latency_ms": 7.30, "accuracy": 0.9},
            {"model": "tv/mobilenet_v3_small", "latency_ms": 8.41, "accuracy": 0.7}]
    fig = plot_scatter(rows, "latency_ms", "latency (ms)", tmp_path / "s.png")
    ax = fig.axes[0]
    fig.draw_without_rendering()
    low, high = ax.get_xlim()
    labels = [t.get_text() for t, v in zip(ax.get_xticklabels(), ax.get_xticks()) if low <= v <= high]
    assert len(labels) >= 3 and all("10^" not in label and label for label in labels), labels
    _assert_labels_readable(fig, ax.texts)


def test_sweep_draws_the_mean_per_point_with_labels_apart(tmp_path):
    values, sizes = [0.125, 0.25, 0.5, 0.75, 1.0], [3.0, 5.88, 11.63, 17.39, 23.15]
    accs = [0.852, 0.869, 0.9, 0.914, 0.947]
    fig = plot_sweep(_sweep_rows(values, sizes, accs), "sr", tmp_path / "sweep.png")
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == pytest.approx(sizes)
    assert list(line.get_ydata()) == pytest.approx([100 * a for a in accs])
    assert [t.get_text() for t in ax.texts] == [f"SR {v:g}" for v in values]
    _assert_labels_readable(fig, ax.texts)


def test_bypass_bars_start_at_zero_and_carry_the_accuracies(tmp_path):
    rows = _sweep_rows([0.125] * 3, [3.0, 3.0, 4.38], [0.852, 0.175, 0.315], seeds=2)
    fig = plot_bypass(rows, "bypass", tmp_path / "b.png")
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([85.2, 17.5, 31.5])
    assert ax.get_ylim()[0] == 0  # heights compare as the accuracies do
    assert [t.get_text().split("\n")[0] for t in ax.texts] == ["85.2%", "17.5%", "31.5%"]
    _assert_labels_readable(fig, ax.texts)
