"""SqueezeNet side by side with MobileNet v2/v3, ShuffleNet v2 and AlexNet, on one machine.

The paper's Table 2 compares model sizes taken from other papers; a survey table mixes hardware.
Here every figure is measured in the same run: parameters and MACs by `summarize` (a real forward
pass), fp32 size as the bytes of parameters and buffers, latency at batch 1 by the project's
benchmark (PyTorch eager and ONNX Runtime, median of warmed-up runs), and, when trained, the final
models' top-1 on the same data with the same recipe and epochs (`analysis.training.train_model`),
mean and spread over seeds. On small images every model has its CIFAR stem (see CompareConfig.stem),
so that the comparison is like for like; each row names its stem.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Callable, Sequence

from squeezelab.analysis.store import SCORING, accuracy_stats, check_recipe, train_units, training_record, write_unit
from squeezelab.errors import SqueezelabError
from squeezelab.train.recipe import SMALL_IMAGE_MODEL, SMALL_IMAGE_SIZE
from squeezelab.utils.atomic import atomic_write_text

DEFAULT_MODELS = ("squeezenet1_0", "squeezenet1_1", "tv/mobilenet_v2", "tv/mobilenet_v3_small",
                  "tv/shufflenet_v2_x1_0", "tv/alexnet")
# Table columns: key, header, format. Sizes in MB (10^6 bytes, as the paper's Table 2).
COLUMNS = (
    ("model", "model", "{}"),
    ("stem", "stem", "{}"),
    ("params", "params", "{:,}"),
    ("macs", "MMACs", "{:.1f}"),
    ("size_bytes", "fp32 MB", "{:.2f}"),
    ("compressed_bytes", "compressed MB", "{:.3f}"),
    ("latency_ms", "eager ms", "{:.2f}"),
    ("latency_ort_ms", "ORT ms", "{:.2f}"),
    ("accuracy", "top-1 %", "{:.1f}"),
    ("accuracy_std", "+-", "{:.1f}"),
)
_SCALE = {"macs": 1e-6, "size_bytes": 1e-6, "compressed_bytes": 1e-6, "accuracy": 100, "accuracy_std": 100}


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    models: tuple[str, ...] | None = None  # None: DEFAULT_MODELS, with squeezenet_cifar first on small images
    data: str | None = None  # None: measure only (no accuracy), at input_size with 1000 classes
    epochs: int = 5
    seeds: int = 2  # trainings per model (seeds 0..n-1): the accuracy's mean and spread
    input_size: int = 224  # used when there is no data; with data the data's image size
    image_size: int | None = None  # override the data's image size (e.g. 64 so AlexNet fits digits)
    # "auto": on images of 64 px or less every model gets its CIFAR stem (peers.CIFAR_STEMS,
    # SqueezeNet's "cifar"), so all shrink a 32 px image to about 4x4; on larger images each keeps
    # its ImageNet stem. "cifar" or "imagenet" force one.
    stem: str = "auto"
    min_seconds: float = 0.5  # timing budget per model and backend
    # Intra-op threads for latency. 1 by default: on a shared machine, multi-threaded eager PyTorch
    # slows down up to 20x when another process holds a core (OpenMP threads spin and wait on each
    # other), so single-thread latency is the figure that repeats. None: all cores.
    threads: int | None = 1
    train_options: dict = dataclasses.field(default_factory=dict)
    amp: str = "auto"  # training precision (runtime.training_precision): auto, off or bf16
    # Options for the SqueezeNet models only, e.g. {"stem": "small"}; they win over `stem`.
    squeezenet_options: dict = dataclasses.field(default_factory=dict)
    # Options for the other models only, e.g. {"init": "he"} (models/peers.py).
    peer_options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.stem not in STEM_CHOICES:
            raise SqueezelabError(f"--stem must be one of {', '.join(STEM_CHOICES)}, got {self.stem!r}")
        if self.data is not None and (self.seeds < 1 or self.epochs < 1):
            raise SqueezelabError(f"--seeds and --epochs must be >= 1, got --seeds {self.seeds} --epochs {self.epochs}")


STEM_CHOICES = ("auto", "cifar", "imagenet")


def model_list(config: CompareConfig, small: bool) -> tuple[str, ...]:
    if config.models:
        return tuple(config.models)
    return (SMALL_IMAGE_MODEL,) + DEFAULT_MODELS if small else DEFAULT_MODELS


def uses_cifar_stems(config: CompareConfig, small: bool) -> bool:
    return config.stem == "cifar" or (config.stem == "auto" and small)


def model_options(name: str, config: CompareConfig, small: bool) -> dict:
    """The options `name` is built and trained with: its stem for this image size, and for the
    SqueezeNets `squeezenet_options` on top. Under --stem auto a peer without a CIFAR stem keeps
    its own; asked for explicitly, the model's builder refuses it in one line."""
    from squeezelab.models.peers import CIFAR_STEMS
    from squeezelab.models.registry import model_family

    cifar = uses_cifar_stems(config, small)
    if model_family(name) == "squeezenet":
        return {"stem": "cifar" if cifar else "standard", **config.squeezenet_options}
    has_one = name.removeprefix("tv/") in CIFAR_STEMS
    stem = {"stem": "cifar"} if cifar and (has_one or config.stem == "cifar") else {}
    return {**stem, **config.peer_options}


def stem_of(name: str, options: dict) -> str:
    """What a row's `stem` says: the option the model was built with, or its default (the
    small-image model's own layout is the CIFAR stem, whichever it was asked for)."""
    from squeezelab.models.registry import model_family

    if name == SMALL_IMAGE_MODEL and options.get("stem", "standard") in ("standard", "cifar"):
        return "cifar"
    return options.get("stem") or ("standard" if model_family(name) == "squeezenet" else "imagenet")


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


def _unit_key(name: str) -> str:
    return name.replace("/", "_")


@dataclasses.dataclass(frozen=True)
class _Work:
    """One model's training with one seed, picklable for `run_parallel`'s worker processes."""

    config: CompareConfig
    out: Path
    train_fn: Callable
    small: bool

    def __call__(self, unit: tuple[str, int], threads: int | None) -> dict:
        name, seed = unit
        config, key = self.config, _unit_key(name)
        run_dir = self.out / "runs" / f"{key}-seed{seed}"
        result = self.train_fn(model=name, model_kwargs=model_options(name, config, self.small), data=config.data,
                               epochs=config.epochs, seed=seed, out_dir=run_dir, train_options=config.train_options,
                               threads=threads, image_size=config.image_size, amp=config.amp)
        record = {"model": name, "seed": seed, **training_record(result), "run_dir": str(run_dir)}
        return write_unit(self.out, key, seed, record)


def recipe_of(config: CompareConfig, small: bool) -> dict:
    """What every training in one --out folder shares (models and seeds may grow between reruns)."""
    return {"data": config.data, "image_size": config.image_size, "epochs": config.epochs,
            "stem": "cifar" if uses_cifar_stems(config, small) else "imagenet", "train_options": config.train_options,
            "squeezenet_options": config.squeezenet_options, "score": SCORING,
            **({"peer_options": config.peer_options} if config.peer_options else {})}


def _is_small(config: CompareConfig) -> bool:
    if config.data is None:
        return config.input_size <= SMALL_IMAGE_SIZE
    if config.image_size is not None:
        return config.image_size <= SMALL_IMAGE_SIZE
    from squeezelab.data.datasets import default_side

    return default_side(config.data) <= SMALL_IMAGE_SIZE


def _trained_model(name: str, record: dict):
    """The first seed's trained model (the compressed size depends on the trained weights), or a
    fresh one of the same architecture when its run folder is gone."""
    from squeezelab.models import create_model
    from squeezelab.train.checkpoint import load_checkpoint, model_from_checkpoint

    last = Path(record.get("run_dir") or "") / "last.pt"
    if record.get("run_dir") and last.is_file():
        return model_from_checkpoint(load_checkpoint(last)).eval()
    return create_model(name, **record["model_options"]).eval()


def _trained_row(name: str, records: list[dict], config: CompareConfig) -> dict:
    first = records[0]
    row = _measure(name, _trained_model(name, first), first["image_size"], config)
    row.update(accuracy_stats(records), stem=stem_of(name, first["model_options"]), epochs=first["epochs"],
               train_seconds=round(sum(r["seconds"] for r in records), 1))
    row["accuracy"] = row["accuracy_mean"]
    return row


def compare(config: CompareConfig, out: str | Path | None = None, *, train_fn: Callable | None = None, jobs: int = 1,
            log: Callable[[str], None] = lambda s: None) -> dict:
    """One row per model; with `data`, each is trained with the same recipe for `seeds` seeds first
    (finished trainings are kept in OUT/points/ and reused by a rerun, see `analysis.store`).

    >>> rows = compare(CompareConfig(models=("squeezenet1_1",), input_size=64, min_seconds=0.05))["rows"]
    >>> sorted(k for k in ("params", "macs", "size_bytes", "latency_ms", "stem") if k in rows[0])
    ['latency_ms', 'macs', 'params', 'size_bytes', 'stem']
    """
    from squeezelab.models import create_model
    from squeezelab.models.registry import model_family

    if config.data is not None and out is None:
        raise SqueezelabError("training models for comparison needs --out DIR for their runs")
    out = Path(out) if out is not None else None
    small = _is_small(config)
    models = model_list(config, small)
    for name in models:
        model_family(name)  # an unknown name stops here, before anything trains
    if config.data is None:
        rows = []
        for i, name in enumerate(models, 1):
            log(f"[{i}/{len(models)}] measuring {name}")
            options = model_options(name, config, small)
            rows.append({**_measure(name, create_model(name, **options).eval(), config.input_size, config),
                         "stem": stem_of(name, options)})
        result = {"data": None, "epochs": 0, "stem": config.stem, "rows": rows, "files": {}}
    else:
        if train_fn is None:
            from squeezelab.analysis.training import train_model as train_fn
        check_recipe(out, recipe_of(config, small))
        units = [(name, seed) for name in models for seed in range(config.seeds)]
        log(f"{len(models)} models x {config.seeds} seeds, {config.epochs} epochs each")
        done, trained = train_units(out, units, _unit_key, _Work(config, out, train_fn, small), jobs, log=log)
        rows = [_trained_row(name, [done[(name, s)] for s in range(config.seeds)], config) for name in models]
        result = {"data": config.data, "epochs": config.epochs, "seeds": config.seeds, "stem": config.stem,
                  "train_options": config.train_options, "rows": rows, "trained": trained,
                  "skipped": len(units) - trained, "files": {}}
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
    keys = [k for k, _, _ in COLUMNS] + ["seeds", "accuracy_on", "input_size", "num_classes", "epochs", "train_seconds"]
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
