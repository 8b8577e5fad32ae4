"""bench/results_tables.py rebuilds the results tables from result files alone (no data, no training)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "results_tables.py"
BASE = {"base_e": 128, "incr_e": 128, "freq": 2, "pct3x3": 0.5, "squeeze_ratio": 0.125}


def _write(folder: Path, name: str, record: dict) -> None:
    (folder / "points").mkdir(parents=True, exist_ok=True)
    (folder / "points" / f"{name}.json").write_text(json.dumps(record))


def test_tables_show_mean_and_spread_of_the_finished_seeds(tmp_path):
    for seed, accuracy in ((0, 0.60), (1, 0.64)):
        _write(tmp_path / "bypass", f"none-seed{seed}", {
            "point": {**BASE, "bypass": "none"}, "seed": seed, "accuracy": accuracy, "accuracy_on": "test",
            "params": 733_034, "size_bytes": 2_960_000, "macs": 52_500_000, "seconds": 600})
    _write(tmp_path / "peers", "squeezenet1_1-seed0", {
        "model": "squeezenet1_1", "seed": 0, "accuracy": 0.7, "accuracy_on": "test", "seconds": 60, "image_size": 32,
        "model_options": {"num_classes": 10, "stem": "cifar", "batch_norm": True}})
    _write(tmp_path / "squeezenet-cifar-bypass", "squeezenet_cifar-seed0", {
        "model": "squeezenet_cifar", "seed": 0, "accuracy": 0.6894, "accuracy_on": "test", "seconds": 500,
        "image_size": 32, "model_options": {"num_classes": 10, "stem": "cifar", "bypass": "simple", "head_norm": True}})
    _write(tmp_path / "deep-compression", "paper-8bit-seed0", {
        "setting": "paper-8bit", "fp32_bytes": 2_747_560, "sqz_bytes": 305_460, "ratio": 9.0, "top1_before": 0.8713,
        "top1_after": 0.8159, "points_lost": 5.54})
    for seed, accuracy in ((0, 0.875), (1, 0.8713)):
        _write(tmp_path / "full-set", f"squeezenet_cifar-seed{seed}", {
            "model": "squeezenet_cifar", "model_options": {}, "seed": seed, "test_acc": accuracy,
            "test_acc_tta": accuracy + 0.01, "accuracy": accuracy, "accuracy_on": "test", "minutes": 50 + seed,
            "epochs": 20, "params": 682_058, "macs": 57_589_760})
    done = subprocess.run([sys.executable, str(BENCH), "--root", str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| none | 733,034 | 2.96 | 52.5 | 62.00 +- 2.83 | 2 | 10.0 |" in done.stdout
    assert "| squeezenet1_1 | cifar | " in done.stdout and "| 70.00 | 1 |" in done.stdout
    assert "### squeezenet_cifar with simple bypass" in done.stdout and "| 68.94 | 1 |" in done.stdout
    assert "| paper-8bit | 2,747,560 | 305,460 | 9.0x | 87.13% | 81.59% | 5.54 |" in done.stdout
    assert "| squeezenet_cifar | cifar | 682,058 | 57.6 | 20 | 87.31 +- 0.26 | 2 | 88.31 | 50.5 |" in done.stdout
