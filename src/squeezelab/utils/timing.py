"""Timing and the benchmark table, shared by every speed figure squeezelab prints.

Speed on a shared 2-core machine is noisy (up to 25% between runs), so a figure is only worth a
ratio against a reference measured in the same run: every table here prints the median, the p90
and the ratio to the first backend (PyTorch eager fp32) beside each other.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Callable, Sequence


@dataclasses.dataclass(frozen=True)
class Timing:
    """Latency of one call over warmed-up runs, in milliseconds."""

    ms_median: float
    ms_p90: float
    runs: int


def time_call(fn: Callable[[], object], *, warmup: int = 2, min_runs: int = 5, max_runs: int = 200,
              min_seconds: float = 1.0) -> Timing:
    """Median and p90 of `fn()` after `warmup` calls; runs until both min_runs and min_seconds pass.

    >>> time_call(lambda: sum(range(1000)), min_seconds=0.01).runs >= 5
    True
    """
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < max_runs and (len(samples) < min_runs or time.perf_counter() - start < min_seconds):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    samples.sort()
    p90 = samples[min(len(samples) - 1, int(round(0.9 * (len(samples) - 1))))]
    return Timing(statistics.median(samples), p90, len(samples))


@dataclasses.dataclass(frozen=True)
class Column:
    key: str
    header: str
    fmt: str = "{}"  # format for the value; a missing value prints as '-'
    width: int = 10


def format_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """A plain-text table: first column left-aligned, the rest right-aligned.

    >>> print(format_table([{"a": "x", "b": 1.5}], [Column("a", "name", width=6), Column("b", "ms", "{:.1f}", 6)]))
    name        ms
    x          1.5
    """
    def cell(row, col, i):
        value = row.get(col.key)
        text = "-" if value is None else col.fmt.format(value)
        return text.ljust(col.width) if i == 0 else text.rjust(col.width)

    lines = ["".join(c.header.ljust(c.width) if i == 0 else c.header.rjust(c.width) for i, c in enumerate(columns))]
    for row in rows:
        lines.append("".join(cell(row, c, i) for i, c in enumerate(columns)))
    return "\n".join(line.rstrip() for line in lines)


SPEED_COLUMNS = [
    Column("model", "model", width=26),
    Column("backend", "backend", width=16),
    Column("batch", "batch", "{}", 6),
    Column("input_size", "px", "{}", 5),  # the side measured at: a model file runs at its own
    Column("ms_median", "ms med", "{:.2f}", 10),
    Column("ms_p90", "ms p90", "{:.2f}", 10),
    Column("images_per_s", "img/s", "{:.1f}", 10),
    Column("ratio_vs_eager", "vs eager", "{:.2f}x", 10),
    Column("size_bytes", "MiB", "{:.2f}", 8),
]


def format_speed_table(rows: Sequence[dict]) -> str:
    """The benchmark table (`squeezelab bench`, bench/*.py): sizes in MiB, ratios beside figures."""
    shown = [{**r, "size_bytes": r["size_bytes"] / 2**20 if r.get("size_bytes") else None} for r in rows]
    return format_table(shown, SPEED_COLUMNS)
