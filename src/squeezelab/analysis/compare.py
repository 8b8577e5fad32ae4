"""SqueezeNet side by side with MobileNet v2/v3, ShuffleNet v2 and AlexNet, on one machine.

The paper's Table 2 compares model sizes taken from other papers; a survey table mixes hardware.
Here every figure is measured in the same run: parameters and MACs by `summarize` (a real forward
pass), fp32 size as the bytes of parameters and buffers, latency at batch 1 by the project's
benchmark (PyTorch eager and ONNX Runtime, median of warmed-up runs), and, when trained, top-1 on
the same data with the same recipe (`analysis.training.train_model`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Callable, Sequence

from squeezelab.errors import SqueezelabError
from squeezelab.utils.atomic import atomic_write_text

DEFAULT_MODELS = ("squeezenet1_0", "squeezenet1_1", "tv/mobilenet_v2", "tv/mobilenet_v3_small",
                  "tv/shufflenet_v2_x1_0", "tv/alexnet")
# Table columns: key, header, format. Sizes in MB (10^6 bytes, as the paper's Table 2).
COLUMNS = (
    ("model", "model", "{}"),
    ("params", "params", "{:,}"),
    ("macs", "MMACs", "{:.1f}"),
    ("size_bytes", "fp32 MB", "{:.2f}"),
    ("compressed_bytes", "compressed MB", "{:.3f}"),
    ("latency_ms", "eager ms", "{:.2f}"),
    ("latency_ort_ms", "ORT ms", "{:.2f}"),
    ("accuracy", "top-1 %", "{:.1f}"),
)
_SCALE = {"macs": 1e-6, "size_bytes": 1e-6, "compressed_bytes": 1e-6, "accuracy": 100}


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    models: tuple[str, ...] = DEFAULT_MODELS
    data: str | None = None  # None: measure only (no accuracy), at input_size with 1000 classes
    epochs: int = 5
    seed: int = 0
    input_size: int = 224  # used when there is no data; with data the data's image size
    image_size: int | None = None  # override the data's image size (e.g. 64 so AlexNet fits digits)
    min_seconds: float = 0.5  # timing budget per model and backend
    # Intra-op threads for latency. 1 by default: on a shared machine, multi-threaded eager PyTorch
    # slows down up to 20x when another process holds a core (OpenMP threads spin and wait on each
    # other), so single-thread latency is the figure that repeats. None: all cores.
    threads: int | None = 1
    train_options: dict = dataclasses.field(default_factory=dict)
    # Options for the SqueezeNet models only (the peers are torchvision's, unchanged), e.g.
    # {"stem": "standard"} to keep the paper's stem on small images.
    squeezenet_options: dict = dataclasses.field(default_factory=dict)


def measure_latency(model, input_size: int, *, min_seconds: float, threads: int | None = 1) -> dict:
    """Batch-1 latency (median ms) of PyTorch eager and ONNX Runtime fp32, from one benchmark run.

    The one place compare measures speed: it calls the project's benchmark so that these figures
    and `squeezelab bench`'s are the same measurement.
    """
    from squeezelab.export.benchmark import benchmark_model

    def run(backends):
        rows = benchmark_model(model, batches=[1], input_size=input_size, backends=backends, min_seconds=min_seconds,
                               threads=threads)
        return {r["backend"]: r for r in rows}

    error = None
    try:
        rows = run(["eager", "ort_fp32"])
    except Exception as exc:  # e.g. AlexNet below 224 px: its adaptive pool does not export to ONNX
        error = f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        rows = run(["eager"])
    eager, ort = rows.get("eager", {}), rows.get("ort_fp32", {})
    return {"latency_ms": eager.get("ms_median"), "latency_ort_ms": ort.get("ms_median"),
            "latency_error": error or ort.get("error") or eager.get("error")}


def compressed_size(model) -> int | None:
    """Bytes of the Deep-Compressed (.sqz) encoding of a SqueezeNet at the paper's settings (a third
    of the weights kept, 8-bit shared weights, Huffman coding); None for the peers.

    Size only: the weights are compressed without the fine-tuning that recovers accuracy
    (`squeezelab compress` does that), which changes the values but not how many bytes they take.
    """
    if not model.record.name.startswith("squeezenet"):
        return None
    import copy

    from squeezelab.compress import PruneConfig, QuantConfig, encode, prune, quantize_

    copied = copy.deepcopy(model).eval()
    prune(copied, PruneConfig(sparsity=0.67))
    quantize_(copied, QuantConfig(bits=8))
    data, _ = encode(copied)
    return len(data)


def _measure(name: str, model, input_size: int, config: CompareConfig) -> dict:
    from squeezelab.analysis.summary import summarize

    summary = summarize(model, input_size)
    row = {"model": name, "params": summary.total_params, "macs": summary.total_macs,
           "size_bytes": summary.total_bytes, "input_size": input_size, "num_classes": model.num_classes}
    row["compressed_bytes"] = compressed_size(model)
    row.update(measure_latency(model, input_size, min_seconds=config.min_seconds, threads=config.threads))
    row["latency_threads"] = config.threads
    return row


def _trained_model(name: str, config: CompareConfig, out: Path, train_fn: Callable) -> tuple[dict, object]:
    from squeezelab.models.registry import model_family
    from squeezelab.train.checkpoint import load_checkpoint, model_from_checkpoint

    options = config.squeezenet_options if model_family(name) == "squeezenet" else {}
    result = train_fn(model=name, model_kwargs=options, data=config.data, epochs=config.epochs, seed=config.seed,
                      out_dir=out / "runs" / name.replace("/", "_"), train_options=config.train_options,
                      image_size=config.image_size)
    model = model_from_checkpoint(load_checkpoint(result["checkpoint"]))  # its record names the registry model
    return result, model.eval()


def compare(config: CompareConfig, out: str | Path | None = None, *, train_fn: Callable | None = None,
            log: Callable[[str], None] = lambda s: None) -> dict:
    """One row per model; with `data`, each is trained with the same recipe first.

    >>> rows = compare(CompareConfig(models=("squeezenet1_1",), input_size=64, min_seconds=0.05))["rows"]
    >>> sorted(k for k in ("params", "macs", "size_bytes", "latency_ms") if k in rows[0])
    ['latency_ms', 'macs', 'params', 'size_bytes']
    """
    from squeezelab.models import create_model
    from squeezelab.models.registry import model_family

    if config.data is not None and out is None:
        raise SqueezelabError("training models for comparison needs --out DIR for their runs")
    if train_fn is None and config.data is not None:
        from squeezelab.analysis.training import train_model as train_fn
    out = Path(out) if out is not None else None
    rows = []
    for i, name in enumerate(config.models, 1):
        if config.data is None:
            log(f"[{i}/{len(config.models)}] measuring {name}")
            options = config.squeezenet_options if model_family(name) == "squeezenet" else {}
            model = create_model(name, **options).eval()
            rows.append(_measure(name, model, config.input_size, config))
            continue
        log(f"[{i}/{len(config.models)}] training {name} on {config.data} for {config.epochs} epochs")
        result, model = _trained_model(name, config, out, train_fn)
        row = _measure(name, model, result["image_size"], config)
        row.update(accuracy=result["best_val_acc"], epochs=result["epochs"], train_seconds=result["seconds"],
                   run_dir=result.get("out"))
        rows.append(row)
    result = {"data": config.data, "epochs": config.epochs if config.data else 0, "rows": rows, "files": {}}
    if out is not None:
        result["files"] = write_outputs(rows, out, plots=config.data is not None)
        atomic_write_text(out / "compare.json", json.dumps(result, indent=2))
    return result


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    return fmt.format(value * _SCALE.get(key, 1))


def to_markdown(rows: Sequence[dict]) -> str:
    """The table as GitHub Markdown (what docs/ and the HTML report show)."""
    lines = ["| " + " | ".join(h for _, h, _ in COLUMNS) + " |",
             "|" + "|".join("---" if k == "model" else "---:" for k, _, _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cell(r, k, f) for k, _, f in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_text(rows: Sequence[dict]) -> str:
    cells = [[h for _, h, _ in COLUMNS]] + [[_cell(r, k, f) for k, _, f in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
                     for line in cells)


def to_csv(rows: Sequence[dict]) -> str:
    """Raw figures (bytes, MACs, ms, fractions), one row per model, for spreadsheets."""
    keys = [k for k, _, _ in COLUMNS] + ["input_size", "num_classes", "epochs", "train_seconds"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_outputs(rows: Sequence[dict], out: Path, *, plots: bool) -> dict:
    files = {"markdown": out / "compare.md", "csv": out / "compare.csv"}
    atomic_write_text(files["markdown"], to_markdown(rows))
    atomic_write_text(files["csv"], to_csv(rows))
    if plots:
        from squeezelab.report.design_plots import plot_scatter

        shown = [{**r, "size_mb": r["size_bytes"] / 1e6} for r in rows]
        files["accuracy_vs_size"] = out / "compare_size.png"
        files["accuracy_vs_latency"] = out / "compare_latency.png"
        plot_scatter(shown, "size_mb", "model size (MB, fp32)", files["accuracy_vs_size"])
        plot_scatter(shown, "latency_ms", "latency (ms, batch 1, eager)", files["accuracy_vs_latency"])
    return {k: str(v) for k, v in files.items()}
