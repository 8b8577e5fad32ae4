"""bench/cifar10.py's smoke run on the real CIFAR-10 images: the JSON line a full run ends with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cifar10.py"
ARCHIVE = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-jpg.tar.gz"


@pytest.mark.slow
@pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"needs the CIFAR-10 archive at {ARCHIVE} (not in the repository)")
def test_quick_run_ends_with_the_figures_of_the_model_it_was_given():
    from squeezelab.models import create_model

    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", "--model-option", "bypass=simple"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    assert {"test_acc", "test_acc_tta", "minutes", "epochs", "model", "params", "macs", "seed", "load"} <= set(figures)
    assert figures["epochs"] == 1 and figures["model_options"] == {"bypass": "simple"}
    # the trainer adds the classifier's batch norm to a batch-norm SqueezeNet with bypass
    expected = create_model("squeezenet_cifar", bypass="simple", head_norm=True)
    assert figures["params"] == sum(p.numel() for p in expected.parameters())
    assert 0.0 <= figures["test_acc"] <= 1.0
