"""The result store of explore and compare: one small JSON file per finished (unit, seed).

Dozens of trainings do not fit in one sitting on a small machine, so each finished training is
written atomically to `OUT/points/KEY-seedN.json` as soon as it ends; a rerun with the same
arguments trains only what is missing and rebuilds every table from those files. `recipe.json`
records what all of them share (the data by name and contents rather than by path, epochs, options,
how accuracy is scored), and a rerun with another recipe is refused rather than mixed in.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import pickle
import statistics
from pathlib import Path
from typing import Callable, Sequence

from squeezelab.errors import SqueezelabError
from squeezelab.utils.atomic import atomic_write_text

# How every stored accuracy is scored, part of each recipe: a folder written when results were
# scored otherwise (the best epoch's validation top-1) is refused instead of averaged with these.
SCORING = "final model"


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


def _data_by_identity(recipe: dict) -> dict:
    """The recipe with its data spec as `data_identity` names it (a folder by its contents, not its
    path); a recipe recorded with a folder's path compares the same way while that path exists."""
    from squeezelab.data.datasets import data_identity

    data = recipe.get("data")
    return {**recipe, "data": data_identity(data)} if isinstance(data, str) else recipe


def _moved(recorded: dict, recipe: dict) -> dict:
    """A recipe recorded with a folder's path that is gone (the data moved to another home folder)
    takes the new folder's identity when the folder names agree: the one case a path alone decides."""
    old, new = recorded.get("data"), recipe.get("data")
    if isinstance(old, str) and isinstance(new, dict) and not Path(old).expanduser().exists() \
            and Path(old).name == new.get("folder"):
        return {**recorded, "data": new}
    return recorded


def check_recipe(out: Path, recipe: dict) -> None:
    """Refuse to resume into a folder whose finished runs used another recipe; record it if new
    (and rewrite a recipe recorded in the older, path-based form once it matches)."""
    path = Path(out) / "recipe.json"
    recipe = json.loads(json.dumps(_data_by_identity(recipe)))  # as it reads back from JSON
    try:
        written = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        atomic_write_text(path, json.dumps(recipe, indent=2))
        return
    recorded = _moved(_data_by_identity(written), recipe)
    if recorded != recipe:
        changed = sorted(k for k in set(recipe) | set(recorded) if recorded.get(k) != recipe.get(k))
        raise SqueezelabError(f"{out} holds runs trained with a different {', '.join(changed)}; "
                              "pass another --out (or delete that folder) to train with this recipe")
    if written != recipe:
        atomic_write_text(path, json.dumps(recipe, indent=2))


def training_record(result: dict) -> dict:
    """What a store file keeps of one training (`analysis.training.train_model`'s result)."""
    return {"accuracy": result["accuracy"], "accuracy_on": result.get("accuracy_on", "validation"),
            "epochs": result["epochs"], "seconds": result["seconds"], "image_size": result["image_size"],
            "num_classes": result["num_classes"], "model_options": result["model_options"]}


def train_units(out: Path, units: Sequence[tuple], key: Callable, work: Callable, jobs: int = 1,
                log: Callable[[str], None] = lambda s: None) -> tuple[dict, int]:
    """Every (item, seed) unit's record: read from the store when finished, else trained by
    `work(unit, threads)` (which writes it). Returns {unit: record} and how many were trained."""
    done = {unit: r for unit in units if (r := read_unit(out, key(unit[0]), unit[1])) is not None}
    todo = [unit for unit in units if unit not in done]
    log(f"{len(units)} trainings: {len(done)} finished before, {len(todo)} to train")
    done.update(run_parallel(work, todo, jobs, describe=lambda u: f"{key(u[0])} seed {u[1]}", log=log))
    return done, len(todo)


def _exit_with_parent(parent: int, poll_seconds: float = 1.0) -> None:
    """Worker initializer: end this worker when the process that started it is gone. A killed
    `compare` or `explore` (kill PID, not Ctrl-C on its process group) would otherwise leave its
    workers training the queued units and writing their result files, into a store a rerun with
    changed code then takes as finished."""
    import threading
    import time

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _call(args) -> dict:
    work, item, threads = args
    return work(item, threads)


def run_parallel(work: Callable, items: Sequence, jobs: int = 1, describe: Callable = str,
                 log: Callable[[str], None] = lambda s: None) -> list[tuple]:
    """(item, work(item, threads)) for every item, in `jobs` processes (spawned, so torch state is
    never forked) sharing the cores, in the order they finish. The first failure cancels what has
    not started and is raised."""
    if jobs <= 1 or len(items) <= 1:
        results = []
        for i, item in enumerate(items, 1):
            log(f"[{i}/{len(items)}] training {describe(item)}")
            results.append((item, work(item, None)))
        return results
    try:
        pickle.dumps(work)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise SqueezelabError(f"--jobs {jobs} needs a training function defined at module level ({exc}); "
                              "pass --jobs 1") from None
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_exit_with_parent,
                                                initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(_call, (work, item, threads)): item for item in items}
        results = []
        try:
            for i, future in enumerate(concurrent.futures.as_completed(futures), 1):
                results.append((futures[future], future.result()))
                log(f"[{i}/{len(items)}] finished {describe(futures[future])}")
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        return results


def accuracy_stats(records: Sequence[dict]) -> dict:
    """Mean and spread over seeds (sample std: 0 for one seed) of the records' accuracies, in the
    keys every table uses, and which images they were scored on (one kind, or an error)."""
    scored_on = {r.get("accuracy_on", "validation") for r in records}
    if len(scored_on) > 1:
        raise SqueezelabError(f"results scored on {' and '.join(sorted(scored_on))} images cannot be averaged; "
                              "pass another --out to train them again")
    accuracies = [r["accuracy"] for r in records]
    return {"accuracy_on": scored_on.pop(), "accuracy_mean": statistics.fmean(accuracies),
            "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "accuracy_min": min(accuracies), "accuracy_max": max(accuracies), "seeds": len(accuracies),
            "accuracies": list(accuracies)}
