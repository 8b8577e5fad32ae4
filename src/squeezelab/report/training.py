"""What a training run leaves to read: metrics.csv every epoch; per_class.csv, eval.json,
curves.png and confusion.png at the end. Plain rows and an `EvalResult` in, files out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from squeezelab.utils.atomic import atomic_write_text

METRIC_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]


def _csv(rows: list[dict], fields: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    """One row per epoch (METRIC_FIELDS), floats to 6 significant digits."""
    rows = [{k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()} for row in history]
    atomic_write_text(path, _csv(rows, METRIC_FIELDS))


def write_run_reports(out: Path, history: list[dict], final) -> None:
    """per_class.csv, eval.json, curves.png and confusion.png (plots need matplotlib) for the
    final validation result `final` (an `EvalResult`)."""
    atomic_write_text(out / "per_class.csv", _csv(final.per_class, ["class", "accuracy", "precision", "recall", "support"]))
    atomic_write_text(out / "eval.json", json.dumps(final.to_dict(), indent=2))
    from squeezelab.report.plots import plot_confusion, plot_curves

    plot_curves(history, out / "curves.png")
    plot_confusion(final, out / "confusion.png")
