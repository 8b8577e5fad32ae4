"""One self-contained HTML page for a run folder, so a person can look instead of reading logs.

Everything a run leaves behind is gathered, each section only when its file is there: the result
and config (result.json, config.json), the figures (every PNG, inlined as base64 so the page is a
single file that can be mailed or attached to an issue), the per-epoch metrics and per-class
tables (CSV), the model's per-layer summary (the paper's Table 1, when the caller hands it in), and
any other JSON report: a compression report, a benchmark table (`squeezelab bench --json >
RUN/bench.json`), explore and compare results. Tables of rows become HTML tables; anything else
is shown as formatted JSON.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path

from squeezelab.errors import SqueezelabError
from squeezelab.utils.atomic import atomic_write_text

# Figures first in this order (the ones a run always makes), then any other PNG alphabetically.
_FIGURE_ORDER = ("curves.png", "confusion.png")
_CAPTIONS = {"curves.png": "training curves (loss and accuracy per epoch)",
             "confusion.png": "confusion matrix on the validation set",
             "weights.png": "one layer's weights before and after compression",
             "compare_size.png": "accuracy vs model size", "compare_latency.png": "accuracy vs latency"}
_MAX_TABLE_ROWS = 200
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right;white-space:nowrap}
section{overflow-x:auto}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figure img{max-width:520px;border:1px solid #ddd}figcaption{font-size:.85em;color:#555}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.8em}
"""


def _esc(value) -> str:
    if isinstance(value, str) and "." in value:  # CSV cells arrive as text: '0.30555555555555556'
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, float):
        return html.escape(f"{value:.4g}")
    return html.escape(str(value))


def table_html(rows: list[dict], columns: list[str] | None = None) -> str:
    """An HTML table of dict rows (columns: the union of keys, in first-seen order)."""
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(r.get(c, ''))}</td>" for c in columns) + "</tr>"
                   for r in rows[:_MAX_TABLE_ROWS])
    more = f"<p>{len(rows) - _MAX_TABLE_ROWS} more rows in the file.</p>" if len(rows) > _MAX_TABLE_ROWS else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _key_values(data: dict) -> str:
    rows = [{"key": k, "value": v if not isinstance(v, (dict, list)) else json.dumps(v)} for k, v in data.items()]
    return table_html(rows, ["key", "value"])


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = _CAPTIONS.get(path.name, path.stem.replace("_", " "))
    return (f'<figure><img alt="{_esc(path.name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_esc(caption)} ({_esc(path.name)})</figcaption></figure>")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _model_summary(summary) -> str:
    """Table 1 for the run's model: a `squeezelab.analysis.summary.Summary` handed in by the caller."""
    rows = [{"layer": r.name, "type": r.type, "output": "x".join(map(str, r.output_shape)),
             "s1x1": r.s1x1 or "", "e1x1": r.e1x1 or "", "e3x3": r.e3x3 or "",
             "params": f"{r.params:,}", "MACs": f"{r.macs:,}"} for r in summary.rows]
    rows.append({"layer": "total", "params": f"{summary.total_params:,}", "MACs": f"{summary.total_macs:,}"})
    return (f"<p>{_esc(summary.model)} at {summary.input_size}x{summary.input_size}: "
            f"{summary.total_params:,} parameters, {summary.total_macs / 1e6:.1f} M MACs, "
            f"{summary.total_bytes / 1e6:.2f} MB fp32.</p>" + table_html(rows))


def _shorten_split(config: dict) -> dict:
    """The config with the recorded validation split (hundreds of indices) shown as its length."""
    data = config.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("split"), dict):
        return config
    split = {k: f"{len(v)} items" if isinstance(v, list) else v for k, v in data["split"].items()}
    return {**config, "data": {**data, "split": split}}


def _json_section(name: str, data, shown: set[str]) -> str:
    """`data` as tables, skipping any table already in `shown` (eval.json repeats per_class.csv)."""
    if _is_rows(data):
        return _once(table_html(data), shown) or "<p>The same table as above.</p>"
    if isinstance(data, dict):
        # Tables of rows (compare's "rows", explore's "sweeps" by name) first, then the scalars.
        tables = {k: v for k, v in data.items() if _is_rows(v)}
        tables.update({f"{k}: {name}": rows for k, v in data.items() if isinstance(v, dict)
                       for name, rows in v.items() if _is_rows(rows)})
        scalars = {k: v for k, v in data.items() if not isinstance(v, (dict, list))}
        if tables or scalars:
            parts = [f"<h3>{_esc(name)}</h3>{table}" for name, rows in tables.items()
                     if (table := _once(table_html(rows), shown))]
            return "".join(parts) + (_key_values(scalars) if scalars else "")
    return f"<pre>{_esc(json.dumps(data, indent=2))}</pre>"


def _once(table: str, shown: set[str]) -> str:
    """`table`, or "" when the page already holds the same cells (a CSV and a JSON of one table)."""
    if table in shown:
        return ""
    shown.add(table)
    return table


def _is_rows(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, dict) for r in value)


def build_report(run_dir: str | Path, *, title: str | None = None, summary=None) -> str:
    """The HTML text of the report for `run_dir`; `summary` (the model's per-layer `Summary`, e.g.
    `squeezelab.analysis.summary.summarize_run(run_dir)`) adds the paper's Table 1.

    >>> page = build_report("runs/latest")  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SqueezelabError(f"{run_dir} is not a folder; pass the --out folder of a train, explore or compare run")
    sections: list[tuple[str, str]] = []
    shown: set[str] = set()  # every table on the page, so one written as both CSV and JSON shows once
    result, config = _read_json(run_dir / "result.json"), _read_json(run_dir / "config.json")
    if isinstance(result, dict):
        sections.append(("Result", _key_values(result)))
    pngs = sorted(run_dir.glob("*.png"), key=lambda p: (p.name not in _FIGURE_ORDER,
                                                          _FIGURE_ORDER.index(p.name) if p.name in _FIGURE_ORDER else 0,
                                                          p.name))
    if pngs:
        sections.append(("Figures", "".join(_figure(p) for p in pngs)))
    for name, heading in (("metrics.csv", "Metrics per epoch"), ("per_class.csv", "Per-class precision and recall"),
                          ("compare.csv", "Comparison")):
        # compare.json holds compare.csv's rows and more columns: its table stands for both.
        if (run_dir / name).is_file() and not (run_dir / name).with_suffix(".json").is_file():
            sections.append((heading, _once(table_html(_read_csv(run_dir / name)), shown)))
    if summary is not None:
        sections.append(("Model summary (paper Table 1)", _model_summary(summary)))
    for path in sorted(run_dir.glob("*.json")):
        if path.name in ("result.json", "config.json"):
            continue
        data = _read_json(path)
        if data is not None:
            heading = path.stem.replace("_", " ").capitalize() + f" ({path.name})"
            sections.append((heading, _json_section(path.name, data, shown)))
    if isinstance(config, dict):
        sections.append(("Config", f"<pre>{_esc(json.dumps(_shorten_split(config), indent=2))}</pre>"))
    if not sections:
        raise SqueezelabError(f"{run_dir} holds no run outputs (result.json, *.png, metrics.csv, *.json); "
                              "pass the --out folder of a train, explore or compare run")
    title = title or f"squeezelab report: {run_dir.resolve().name}"
    body = "".join(f"<section><h2>{_esc(h)}</h2>{content}</section>" for h, content in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{_esc(title)}</h1>"
            f"<p>Generated from <code>{_esc(run_dir)}</code>.</p>{body}</body></html>\n")


def write_report(run_dir: str | Path, output: str | Path, *, title: str | None = None, summary=None) -> Path:
    """Build the report and write it atomically to `output`."""
    page = build_report(run_dir, title=title, summary=summary)
    atomic_write_text(output, page)
    return Path(output)
