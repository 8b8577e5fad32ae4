"""Design-space sweeps: points, the resumable point store, aggregation and the plots."""

from __future__ import annotations

import json

import pytest

from squeezelab.analysis.explore import ExploreConfig, Point, design_points, explore, parse_sweep, unique_points
from squeezelab.errors import SqueezelabError


class FakeTrainer:
    """Stands in for the trainer: accuracy grows with SR, optionally fails on the n-th call."""

    def __init__(self, fail_on: int | None = None):
        self.calls: list[tuple[str, int]] = []
        self.fail_on = fail_on

    def __call__(self, *, model, model_kwargs, data, epochs, seed, out_dir, train_options, threads, image_size,
                 amp):
        self.calls.append((Point(**{k: model_kwargs[k] for k in Point.__dataclass_fields__}).key, seed))
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise KeyboardInterrupt  # what Ctrl-C or a kill looks like mid-sweep
        options = {**model_kwargs, "num_classes": 10, "stem": "small"}
        accuracy = 0.5 + 0.4 * model_kwargs["squeeze_ratio"] + 0.01 * seed
        return {"accuracy": accuracy, "accuracy_on": "test", "epochs": epochs, "seconds": 0.1,
                "num_classes": 10, "image_size": 32, "model_options": options}


def test_parse_sweep_rejects_unknown_names_and_bad_values():
    assert parse_sweep("sr=0.125, 0.5") == ("sr", [0.125, 0.5])
    for bad in ("sr", "depth=1,2", "sr=a,b", "sr=0,0.5", "pct3x3=1.5", "freq=1.5"):
        with pytest.raises(SqueezelabError):
            parse_sweep(bad)


def test_sweeps_hold_other_metaparameters_at_squeezenet_1_0_and_share_coinciding_points():
    groups = design_points({"sr": [0.125, 0.5], "pct3x3": [0.5, 0.75]}, ["none", "simple"])
    assert [p.squeeze_ratio for p in groups["sr"]] == [0.125, 0.5]
    assert {p.pct3x3 for p in groups["sr"]} == {0.5}
    assert [p.bypass for p in groups["bypass"]] == ["none", "simple"]
    # SR 0.125 = pct3x3 0.5 = bypass none = SqueezeNet 1.0: trained once.
    assert len(unique_points(groups)) == 4


def test_explore_records_sizes_accuracy_spread_and_plots(tmp_path):
    trainer = FakeTrainer()
    result = explore(ExploreConfig({"sr": [0.25, 0.5]}, bypass=("none", "simple"), seeds=2), tmp_path,
                     train_fn=trainer)
    assert len(trainer.calls) == 4 * 2  # SR 0.25, 0.5; bypass none (SR 0.125), simple; x 2 seeds
    rows = result["sweeps"]["sr"]
    assert rows[0]["params"] < rows[1]["params"]  # a larger SR means wider squeeze layers
    assert rows[0]["size_bytes"] < rows[1]["size_bytes"] and rows[0]["macs"] < rows[1]["macs"]
    assert rows[1]["accuracy_mean"] == pytest.approx(0.5 + 0.2 + 0.005)
    assert rows[1]["accuracy_std"] == pytest.approx(0.00707, abs=1e-4)
    bypass = result["sweeps"]["bypass"]
    assert bypass[0]["params"] == bypass[1]["params"]  # simple bypass adds no parameters
    for name in ("sr", "bypass"):
        assert (tmp_path / f"explore_{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "explore.json").read_text())["sweeps"]["sr"][0]["seeds"] == 2


def test_interrupted_explore_resumes_without_retraining_finished_points(tmp_path):
    config = ExploreConfig({"sr": [0.25, 0.5, 0.75]}, seeds=1)
    with pytest.raises(KeyboardInterrupt):
        explore(config, tmp_path, train_fn=FakeTrainer(fail_on=3), plots=False)
    assert len(list((tmp_path / "points").glob("*.json"))) == 2
    assert not (tmp_path / "explore.json").exists()
    rerun = FakeTrainer()
    result = explore(config, tmp_path, train_fn=rerun, plots=False)
    assert [key for key, _ in rerun.calls] == [Point(squeeze_ratio=0.75).key]
    assert (result["trained"], result["skipped"]) == (1, 2)
    # A half-written (corrupt) point file counts as unfinished, not as a result.
    (tmp_path / "points" / f"{Point(squeeze_ratio=0.25).key}-seed0.json").write_text("{")
    again = FakeTrainer()
    explore(config, tmp_path, train_fn=again, plots=False)
    assert [key for key, _ in again.calls] == [Point(squeeze_ratio=0.25).key]


def test_a_folder_of_runs_with_another_recipe_is_not_reused(tmp_path):
    explore(ExploreConfig({"sr": [0.25]}, seeds=1, epochs=1), tmp_path, train_fn=FakeTrainer(), plots=False)
    grown = FakeTrainer()  # more points and seeds with the same recipe: only the new ones train
    explore(ExploreConfig({"sr": [0.25, 0.5]}, seeds=2, epochs=1), tmp_path, train_fn=grown, plots=False)
    assert len(grown.calls) == 3
    with pytest.raises(SqueezelabError, match="different epochs, train_options"):
        explore(ExploreConfig({"sr": [0.25]}, seeds=1, epochs=2, train_options={"lr": 0.01}), tmp_path,
                train_fn=FakeTrainer(), plots=False)


def test_a_bypass_sweep_gives_every_point_the_same_classifier_norm(tmp_path):
    trainer = FakeTrainer()
    explore(ExploreConfig(bypass=("none", "simple"), seeds=1), tmp_path, train_fn=trainer, plots=False)
    recipe = json.loads((tmp_path / "recipe.json").read_text())
    assert recipe["model_options"] == {"head_norm": True} and recipe["score"] == "final model"


def test_results_scored_on_different_images_are_never_averaged():
    from squeezelab.analysis.store import accuracy_stats

    assert accuracy_stats([{"accuracy": 0.5, "accuracy_on": "test"}])["accuracy_on"] == "test"
    with pytest.raises(SqueezelabError, match="cannot be averaged"):
        accuracy_stats([{"accuracy": 0.5, "accuracy_on": "test"}, {"accuracy": 0.6}])
