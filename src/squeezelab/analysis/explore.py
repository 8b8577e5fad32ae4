"""Design-space exploration: the paper's Section 5 (SR, pct3x3) and Section 6 (bypass) experiments.

Each point of the design space is a `squeezenet_meta` model built from the Section 5
metaparameters (base_e, incr_e, freq, pct3x3, squeeze ratio SR) plus a bypass kind. As in the
paper's Figure 3, every sweep varies ONE metaparameter with the others at SqueezeNet 1.0's values,
so `--sweep sr=...` draws Figure 3(a) and `--sweep pct3x3=...` Figure 3(b); points that coincide
(e.g. SR 0.125 and pct3x3 0.5 are both SqueezeNet 1.0) are trained once.

Every (point, seed) is trained by an injectable function (the project's trainer by default) and its
result written to its own file in the result store (`analysis.store`), so an interrupted sweep rerun
with the same arguments trains only what is missing. Work units run in separate processes when
`jobs > 1`. A point's accuracy is its final model's (`analysis.training`), never a chosen epoch's.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable, Sequence

from squeezelab.analysis.store import SCORING, accuracy_stats, check_recipe, train_units, training_record, write_unit
from squeezelab.errors import SqueezelabError
from squeezelab.models.squeezenet import Metaparameters
from squeezelab.utils.atomic import atomic_write_text

# CLI sweep names -> squeezenet_meta keyword; "sr" is the paper's name for the squeeze ratio.
SWEEP_KEYS = {"sr": "squeeze_ratio", "pct3x3": "pct3x3", "base_e": "base_e", "incr_e": "incr_e", "freq": "freq"}
BYPASS_KINDS = ("none", "simple", "complex")
# SqueezeNet 1.0's metaparameters (Section 5): every sweep holds the others at these values.
BASE_META = dataclasses.asdict(Metaparameters())

# train_fn(*, model, model_kwargs, data, epochs, seed, out_dir, train_options, threads, image_size, amp) -> dict with
# accuracy (the final model's top-1), accuracy_on, epochs, seconds, num_classes, image_size, model_options
# (see analysis/training.py).
TrainFn = Callable[..., dict]


@dataclasses.dataclass(frozen=True)
class Point(Metaparameters):
    """One model of the design space: the paper's metaparameters and the bypass kind."""

    bypass: str = "none"

    @property
    def key(self) -> str:
        """A file-name-safe identity: the same point always maps to the same result file."""
        return (f"be{self.base_e}-ie{self.incr_e}-f{self.freq}-p{self.pct3x3:g}-sr{self.squeeze_ratio:g}"
                f"-{self.bypass}")

    def model_kwargs(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ExploreConfig:
    """What to explore and how to train each point (the same recipe for every point)."""

    sweeps: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    bypass: tuple[str, ...] = ()
    data: str = "digits"
    epochs: int = 5
    seeds: int = 3
    image_size: int | None = None  # None: the data's own size
    model_options: dict = dataclasses.field(default_factory=dict)  # stem, batch_norm, final_relu, ...
    train_options: dict = dataclasses.field(default_factory=dict)  # lr, batch_size, ... for the trainer
    amp: str = "auto"  # training precision (runtime.training_precision): auto, off or bf16

    def __post_init__(self):
        if self.seeds < 1 or self.epochs < 1:
            raise SqueezelabError(f"--seeds and --epochs must be >= 1, got --seeds {self.seeds} --epochs {self.epochs}")


def with_bypass_head_norm(config: ExploreConfig) -> ExploreConfig:
    """With a bypass sweep, every point of the run normalises its classifier's input when the
    trainer gives the bypass points that layer (batch norm, the default), so the bypass table
    differs by the bypass alone (see `SqueezeNet`'s head_norm)."""
    options = config.model_options
    if not config.bypass or "head_norm" in options:
        return config
    return dataclasses.replace(config, model_options={**options, "head_norm": bool(options.get("batch_norm", True))})


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """'sr=0.125,0.25' -> ('sr', [0.125, 0.25]).

    >>> parse_sweep("pct3x3=0.25,0.5")
    ('pct3x3', [0.25, 0.5])
    """
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or name not in SWEEP_KEYS:
        raise SqueezelabError(f"bad --sweep {text!r}: write NAME=V1,V2,... with NAME one of {', '.join(SWEEP_KEYS)}")
    try:
        numbers = [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise SqueezelabError(f"bad --sweep {text!r}: the values must be numbers separated by commas") from None
    if not numbers:
        raise SqueezelabError(f"bad --sweep {text!r}: give at least one value after '='")
    if name in ("sr", "pct3x3") and not all(0 < v <= 1 for v in numbers):
        raise SqueezelabError(f"bad --sweep {text!r}: {name} values must be in (0, 1]")
    if name in ("base_e", "incr_e", "freq") and not all(v >= 1 and v == int(v) for v in numbers):
        raise SqueezelabError(f"bad --sweep {text!r}: {name} values must be whole numbers >= 1")
    return name, numbers


def parse_bypass(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in BYPASS_KINDS]
    if bad or not kinds:
        raise SqueezelabError(f"bad --bypass {text!r}: choose from {','.join(BYPASS_KINDS)}")
    return kinds


def design_points(sweeps: dict[str, Sequence[float]], bypass: Sequence[str] = ()) -> dict[str, list[Point]]:
    """The points of each one-dimensional sweep (others at SqueezeNet 1.0's values), by sweep name.

    >>> [p.squeeze_ratio for p in design_points({"sr": [0.25, 0.5]})["sr"]]
    [0.25, 0.5]
    """
    groups: dict[str, list[Point]] = {}
    for name, values in sweeps.items():
        field = SWEEP_KEYS[name]
        cast = int if field in ("base_e", "incr_e", "freq") else float
        groups[name] = [Point(**{**BASE_META, field: cast(v)}) for v in values]
    if bypass:
        groups["bypass"] = [Point(**BASE_META, bypass=kind) for kind in bypass]
    if not groups:
        raise SqueezelabError("nothing to explore: give at least one --sweep NAME=V1,V2 or --bypass none,simple")
    return groups


def unique_points(groups: dict[str, list[Point]]) -> list[Point]:
    seen: dict[str, Point] = {}
    for points in groups.values():
        for p in points:
            seen.setdefault(p.key, p)
    return list(seen.values())


# ---------------------------------------------------------------- training the units

def run_unit(point: Point, seed: int, config: ExploreConfig, out: Path, train_fn: TrainFn,
             threads: int | None = None) -> dict:
    """Train one (point, seed), measure its size, and store the record atomically. Returns it."""
    from squeezelab.analysis.summary import summarize
    from squeezelab.models import create_model

    run_dir = Path(out) / "runs" / f"{point.key}-seed{seed}"
    result = train_fn(
        model="squeezenet_meta", model_kwargs={**config.model_options, **point.model_kwargs()},
        data=config.data, epochs=config.epochs, seed=seed, out_dir=run_dir, train_options=config.train_options,
        threads=threads, image_size=config.image_size, amp=config.amp,
    )
    size = summarize(create_model("squeezenet_meta", **result["model_options"]), result["image_size"])
    record = {"point": point.model_kwargs(), "key": point.key, "seed": seed, "params": size.total_params,
              "macs": size.total_macs, "size_bytes": size.total_bytes, **training_record(result),
              "run_dir": str(run_dir)}
    return write_unit(out, point.key, seed, record)


@dataclasses.dataclass(frozen=True)
class _Work:
    """One sweep's training, picklable for the worker processes of `run_parallel`."""

    config: ExploreConfig
    out: Path
    train_fn: TrainFn

    def __call__(self, unit: tuple[Point, int], threads: int | None) -> dict:
        point, seed = unit
        return run_unit(point, seed, self.config, self.out, self.train_fn, threads)


def recipe_of(config: ExploreConfig) -> dict:
    """What every run in one --out folder must share for its results to be comparable and reused
    (sweeps and seeds may grow between reruns; data, epochs and options may not)."""
    return {"data": config.data, "image_size": config.image_size, "epochs": config.epochs,
            "model_options": config.model_options, "train_options": config.train_options, "score": SCORING}


# ---------------------------------------------------------------- aggregation

def aggregate(point: Point, records: list[dict]) -> dict:
    """One point's row: size figures and accuracy mean / spread (sample std, min, max) over seeds."""
    first = records[0]
    return {
        **point.model_kwargs(), "key": point.key,
        "params": first["params"], "macs": first["macs"], "size_bytes": first["size_bytes"],
        **accuracy_stats(records), "train_seconds": sum(r["seconds"] for r in records),
    }


def explore(config: ExploreConfig, out: str | Path, *, train_fn: TrainFn | None = None, jobs: int = 1,
            plots: bool = True, log: Callable[[str], None] = lambda s: None) -> dict:
    """Train every point of the sweeps (skipping finished ones) and write `explore.json` + plots.

    >>> explore(ExploreConfig({"sr": [0.25, 0.5]}, data="digits", epochs=1, seeds=1), "/tmp/sweep")  # doctest: +SKIP
    """
    out = Path(out)
    if train_fn is None:
        from squeezelab.analysis.training import train_model as train_fn
    config = with_bypass_head_norm(config)
    groups = design_points(config.sweeps, config.bypass)
    points = unique_points(groups)
    check_recipe(out, recipe_of(config))
    units = [(p, seed) for p in points for seed in range(config.seeds)]
    done, trained = train_units(out, units, lambda p: p.key, _Work(config, out, train_fn), jobs, log=log)
    rows = {p.key: aggregate(p, [done[(p, s)] for s in range(config.seeds)]) for p in points}
    result = {
        "data": config.data, "image_size": config.image_size, "epochs": config.epochs, "seeds": config.seeds,
        "model_options": config.model_options, "train_options": config.train_options,
        "sweeps": {name: [rows[p.key] for p in pts] for name, pts in groups.items()},
        "trained": trained, "skipped": len(units) - trained,
        "plots": {},
    }
    if plots:
        from squeezelab.report.design_plots import plot_bypass, plot_sweep

        for name in groups:
            path = out / f"explore_{name}.png"
            (plot_bypass if name == "bypass" else plot_sweep)(result["sweeps"][name], name, path)
            result["plots"][name] = str(path)
    atomic_write_text(out / "explore.json", json.dumps(result, indent=2))
    return result

