"""The result store of explore and compare: one small JSON file per finished (unit, seed).

Dozens of trainings do not fit in one sitting on a small machine, so each finished training is
written atomically to `OUT/points/KEY-seedN.json` as soon as it ends; a rerun with the same
arguments trains only what is missing and rebuilds every table from those files. `recipe.json`
records what all of them share (data, epochs, options), and a rerun with another recipe is
refused rather than mixed in.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import statistics
from pathlib import Path
from typing import Callable, Sequence

from squeezelab.errors import SqueezelabError
from squeezelab.utils.atomic import atomic_write_text


def unit_path(out: Path, key: str, seed: int) -> Path:
    return Path(out) / "points" / f"{key}-seed{seed}.json"


def read_unit(out: Path, key: str, seed: int) -> dict | None:
    """A finished unit's record, or None if it was never finished (or its file is unreadable)."""
    try:
        return json.loads(unit_path(out, key, seed).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_unit(out: Path, key: str, seed: int, record: dict) -> dict:
    atomic_write_text(unit_path(out, key, seed), json.dumps(record, indent=2))
    return record


def check_recipe(out: Path, recipe: dict) -> None:
    """Refuse to resume into a folder whose finished runs used another recipe; record it if new."""
    path = Path(out) / "recipe.json"
    recipe = json.loads(json.dumps(recipe))  # as it reads back from JSON
    try:
        recorded = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        atomic_write_text(path, json.dumps(recipe, indent=2))
        return
    if recorded != recipe:
        changed = sorted(k for k in set(recipe) | set(recorded) if recorded.get(k) != recipe.get(k))
        raise SqueezelabError(f"{out} holds runs trained with a different {', '.join(changed)}; "
                              "pass another --out (or delete that folder) to train with this recipe")


def _call(args) -> dict:
    work, item, threads = args
    return work(item, threads)


def run_parallel(work: Callable, items: Sequence, jobs: int = 1, describe: Callable = str,
                 log: Callable[[str], None] = lambda s: None) -> list[dict]:
    """`work(item, threads)` for every item, in `jobs` processes (spawned, so torch state is never
    forked) sharing the cores; results in the order they finish. `work` must be picklable."""
    if jobs <= 1 or len(items) <= 1:
        records = []
        for i, item in enumerate(items, 1):
            log(f"[{i}/{len(items)}] training {describe(item)}")
            records.append(work(item, None))
        return records
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(_call, (work, item, threads)): item for item in items}
        records = []
        for i, future in enumerate(concurrent.futures.as_completed(futures), 1):
            records.append(future.result())
            log(f"[{i}/{len(items)}] finished {describe(futures[future])}")
        return records


def accuracy_stats(accuracies: Sequence[float]) -> dict:
    """Mean and spread over seeds (sample std: 0 for one seed), in the keys every table uses."""
    return {"accuracy_mean": statistics.fmean(accuracies),
            "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "accuracy_min": min(accuracies), "accuracy_max": max(accuracies), "seeds": len(accuracies),
            "accuracies": list(accuracies)}
