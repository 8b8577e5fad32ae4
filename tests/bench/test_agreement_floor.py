"""bench/agreement_floor.py on a tiny trained model: the figures compress's agreement is read against."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from data.image_builders import make_folder
from helpers import load_bench

BENCH = Path(__file__).resolve().parents[2] / "bench" / "agreement_floor.py"


def test_measures_on_the_images_compress_holds_out(tmp_path, trained_run):
    from squeezelab.compress import datafree

    result, _ = trained_run
    make_folder(tmp_path / "photos", classes=("a", "b"), per_class=5, size=(20, 20))
    done = subprocess.run([sys.executable, str(BENCH), result["checkpoint"], "--images", tmp_path / "photos",
                           "--held-out-images", "8", "--calib-images", "2", "--threads", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout.splitlines()[-1])
    calibration, held_out = datafree.split_images(tmp_path / "photos", 2, 8, 0)
    assert rows["images"] == 8 and rows["held_out"] == [str(p) for p in held_out]
    assert not set(rows["held_out"]) & {str(p) for p in calibration}
    assert 1 / 3 <= rows["median_top1_probability"] <= 1  # the model's three classes: the top one has a third


def test_a_folder_with_too_few_images_is_one_line(tmp_path, trained_run):
    result, _ = trained_run
    make_folder(tmp_path / "photos", classes=("a",), per_class=2, size=(20, 20))
    done = subprocess.run([sys.executable, str(BENCH), result["checkpoint"], "--images", tmp_path / "photos"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "agreement_floor:" in done.stderr and "Traceback" not in done.stderr


def test_weight_noise_moves_weights_by_the_asked_share_of_their_spread_and_leaves_biases():
    import torch

    bench = load_bench("agreement_floor")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.Conv2d(64, 64, 3))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), bench.weight_noise(model, 0.0).parameters()))
    noisy = bench.weight_noise(model, 0.01)
    for (name, before), after in zip(model.named_parameters(), noisy.parameters()):
        before, after = before.detach(), after.detach()
        change = after - before
        if before.dim() > 1:
            assert 0.005 < float(change.std() / before.std()) < 0.02, name
        else:
            assert torch.equal(after, before), name
