"""bench/agreement_floor.py on a tiny trained model: the figures compress's agreement is read against."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from data.image_builders import make_folder

BENCH = Path(__file__).resolve().parents[2] / "bench" / "agreement_floor.py"


def test_prints_confidence_and_self_agreement_on_the_held_out_images(tmp_path, trained_run):
    result, _ = trained_run
    make_folder(tmp_path / "photos", classes=("a", "b"), per_class=5, size=(20, 20))
    done = subprocess.run([sys.executable, str(BENCH), result["checkpoint"], "--images", tmp_path / "photos",
                           "--held-out", "8", "--calibration", "2", "--threads", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout.splitlines()[-1])
    assert rows["images"] == 8
    assert rows["median_top1_probability"] >= rows["median_margin_over_second"] >= 0
    assert all(0 <= rows[k] <= 1 for k in ("agreement_shift_1px", "agreement_flip", "agreement_weight_noise_1pct"))


def test_weight_noise_moves_weights_by_the_asked_share_of_their_spread_and_leaves_biases():
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("agreement_floor", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.Conv2d(64, 64, 3))
    noisy = bench.weight_noise(model, 0.01)
    for (name, before), after in zip(model.named_parameters(), noisy.parameters()):
        before, after = before.detach(), after.detach()
        change = after - before
        if before.dim() > 1:
            assert 0.005 < float(change.std() / before.std()) < 0.02, name
        else:
            assert torch.equal(after, before), name
