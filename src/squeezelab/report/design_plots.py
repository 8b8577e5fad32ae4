"""Plots of the design space (paper Figure 3 and Section 6) and of the peer comparison.

Figure 3 plots accuracy against model size, one marker per value of the swept metaparameter; here
the marker carries the mean over seeds and an error bar spanning min..max, so a reader sees
whether two points differ by more than the seed noise. Point labels are placed where they stay
inside the axes and clear of each other. Each function returns the Figure it wrote (PNG, atomic).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from squeezelab.report.plots import new_figure, readable_log_ticks, save_figure

_LABELS = {"sr": "squeeze ratio SR", "pct3x3": "pct3x3 (share of 3x3 filters)", "base_e": "base_e",
           "incr_e": "incr_e", "freq": "freq"}
_SHORT = {"sr": "SR", "pct3x3": "pct3x3"}
_FIELDS = {"sr": "squeeze_ratio", "pct3x3": "pct3x3", "base_e": "base_e", "incr_e": "incr_e", "freq": "freq"}
# Label offsets (points) tried in turn: close first, then further out; right and above first.
_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
LEADER_POINTS = 12  # a label placed further than this from its point gets a line to it
_OFFSETS = tuple((dx * r, dy * r) for r in (5, 12, 22, 34) for dx, dy in _DIRECTIONS)


def _figure(**kwargs):
    return new_figure(figsize=kwargs.pop("figsize", (6.4, 4.4)), dpi=110, **kwargs)


def _overlap(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0) * max(height, 0)


def _outside(box, frame) -> float:
    """Area of `box` that lies outside `frame` (0 when the box is inside)."""
    return box.width * box.height - _overlap(box, frame)


def _segment_boxes(centres: Sequence[tuple[float, float]], samples: int = 16) -> list:
    """Small pixel boxes along the line through `centres`, so a label can avoid sitting on it."""
    from matplotlib.transforms import Bbox

    boxes = []
    for (x0, y0), (x1, y1) in zip(centres, centres[1:]):
        for i in range(1, samples):
            x, y = x0 + (x1 - x0) * i / samples, y0 + (y1 - y0) * i / samples
            boxes.append(Bbox.from_extents(x - 2, y - 2, x + 2, y + 2))
    return boxes


def place_labels(ax, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], *, fontsize: float = 8,
                 joined: bool = False):
    """Annotate each point with its label at the first nearby spot that stays inside the axes and
    overlaps neither another label nor a point (the least bad spot when none is free); `joined`
    also keeps labels off the line drawn through the points in order.

    Call after the limits and the layout are final: positions are measured in pixels.
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    centres = [tuple(c) for c in ax.transData.transform(list(zip(xs, ys)))] if len(xs) else []
    obstacles = [Bbox.from_extents(cx - 5, cy - 5, cx + 5, cy + 5) for cx, cy in centres]
    if joined:
        obstacles += _segment_boxes(centres)
    annotations = []
    for x, y, text in zip(xs, ys, labels):
        note = ax.annotate(text, (x, y), xytext=(0, 0), textcoords="offset points", fontsize=fontsize,
                           annotation_clip=False)
        best = None
        for dx, dy in _OFFSETS:
            note.xyann = (dx, dy)
            note.set_ha("left" if dx > 0 else "right" if dx < 0 else "center")
            note.set_va("bottom" if dy > 0 else "top" if dy < 0 else "center")
            box = note.get_window_extent(renderer).padded(1)
            cost = 10 * _outside(box, frame) + sum(_overlap(box, other) for other in obstacles)
            if best is None or cost < best[0]:
                best = (cost, dx, dy, box)
            if cost == 0:
                break
        _, dx, dy, box = best
        note.xyann = (dx, dy)
        note.set_ha("left" if dx > 0 else "right" if dx < 0 else "center")
        note.set_va("bottom" if dy > 0 else "top" if dy < 0 else "center")
        if max(abs(dx), abs(dy)) > LEADER_POINTS:  # pushed far from its point: a thin line back to it
            note.remove()
            note = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                               annotation_clip=False, ha=note.get_ha(), va=note.get_va(),
                               arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.6, "shrinkA": 1, "shrinkB": 4})
        obstacles.append(box)
        annotations.append(note)
    return annotations


def _freeze_limits(ax) -> None:
    """Fix the autoscaled limits, so labels measured in pixels stay where they were measured."""
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())


def _seeds(n: int) -> str:
    return "1 seed" if n == 1 else f"mean of {n} seeds"


def _accuracy_label(rows: Sequence[dict]) -> str:
    """The y axis: which images the final models were scored on, and over how many seeds."""
    on = rows[0].get("accuracy_on", "validation") if rows else "validation"
    seeds = rows[0].get("seeds", 1) if rows else 1
    return f"{on} top-1 (%), {_seeds(seeds)}"


def _error_bars(rows: Sequence[dict]) -> list[list[float]]:
    return [[100 * (r["accuracy_mean"] - r["accuracy_min"]) for r in rows],
            [100 * (r["accuracy_max"] - r["accuracy_mean"]) for r in rows]]


def plot_sweep(rows: Sequence[dict], sweep: str, path: str | Path):
    """Accuracy (mean, min..max over seeds) vs model size in MB, each point labelled by its value.

    >>> plot_sweep(explore_result["sweeps"]["sr"], "sr", "explore_sr.png")  # doctest: +SKIP
    """
    fig, ax = _figure()
    sizes = [r["size_bytes"] / 1e6 for r in rows]
    accs = [100 * r["accuracy_mean"] for r in rows]
    ax.errorbar(sizes, accs, yerr=_error_bars(rows), fmt="o-", capsize=3, color="tab:blue")
    ax.set_xlabel("model size (MB, fp32)")
    ax.set_ylabel(_accuracy_label(rows))
    ax.set_title(f"accuracy vs size, sweeping {_LABELS.get(sweep, sweep)}")
    ax.grid(alpha=0.3)
    ax.margins(x=0.15, y=0.15)
    _freeze_limits(ax)
    fig.tight_layout()
    name = _SHORT.get(sweep, sweep)
    place_labels(ax, sizes, accs, [f"{name} {r[_FIELDS.get(sweep, sweep)]:g}" for r in rows], joined=True)
    return save_figure(fig, path)


def plot_bypass(rows: Sequence[dict], _sweep: str, path: str | Path):
    """Bar chart of accuracy per bypass kind (paper Table 3), with min..max over seeds.

    Bars start at zero, so their heights compare as the accuracies do.
    """
    fig, ax = _figure()
    names = [r["bypass"] for r in rows]
    accs = [100 * r["accuracy_mean"] for r in rows]
    seeds = rows[0]["seeds"] if rows else 0
    spread = _error_bars(rows) if seeds > 1 else None
    ax.bar(names, accs, yerr=spread, capsize=4, color=["tab:gray", "tab:blue", "tab:orange"][: len(rows)])
    for i, r in enumerate(rows):
        top = 100 * r["accuracy_max"] if seeds > 1 else accs[i]
        ax.annotate(f"{accs[i]:.1f}%\n{r['size_bytes'] / 1e6:.2f} MB", (i, top), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 112)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel(_accuracy_label(rows))
    ax.set_title("SqueezeNet with and without bypass")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_scatter(rows: Sequence[dict], x_key: str, x_label: str, path: str | Path, *, log_x: bool = True):
    """Accuracy vs one cost column (size, latency) for the compared models, labelled by name.

    >>> plot_scatter(rows, "latency_ms", "latency (ms)", "compare_latency.png")  # doctest: +SKIP
    """
    fig, ax = _figure(figsize=(7.2, 4.8))
    shown = [r for r in rows if r.get("accuracy") is not None and r.get(x_key) is not None]
    xs = [float(r[x_key]) for r in shown]
    ys = [100 * r["accuracy"] for r in shown]
    ours = [r["model"].startswith("squeezenet") for r in shown]
    for family, mine, style in (("SqueezeNet", True, {"color": "tab:red", "marker": "D"}),
                                ("other models", False, {"color": "tab:blue", "marker": "o"})):
        picked = [(x, y, r) for x, y, r, flag in zip(xs, ys, shown, ours) if flag == mine]
        if picked:
            px, py, prows = zip(*picked)
            spread = _error_bars(prows) if all("accuracy_min" in r for r in prows) else None
            ax.errorbar(px, py, yerr=spread, fmt="none", ecolor=style["color"], capsize=3, zorder=2)
            ax.scatter(px, py, label=family, zorder=3, **style)
    if log_x and xs and min(xs) > 0:
        ax.set_xscale("log")
    ax.margins(x=0.2, y=0.2)
    _freeze_limits(ax)
    if ax.get_xscale() == "log":
        readable_log_ticks(ax.xaxis, *ax.get_xlim())
    ax.set_xlabel(x_label)
    ax.set_ylabel(_accuracy_label(shown))
    ax.set_title(f"accuracy vs {x_label.split(' (')[0]}")
    ax.grid(alpha=0.3)
    if shown:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # outside the data
    fig.tight_layout()
    place_labels(ax, xs, ys, [r["model"].removeprefix("tv/") for r in shown])
    return save_figure(fig, path)
