"""Two CPU processes under torchrun with gloo train one run; only rank 0 writes."""

import json
import os
import subprocess
import sys


def test_torchrun_two_processes_gloo(tmp_path):
    out = tmp_path / "ddp"
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "squeezelab",
         "train", "--data", "synthetic:n=48,classes=3,size=12", "--epochs", "2", "--batch-size", "8",
         "--device", "cpu", "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)  # one JSON document: rank 1 printed nothing
    assert result["world_size"] == 2 and result["epochs"] == 2
    assert result["val_images"] + result["train_images"] == 48
    assert (out / "last.pt").exists() and (out / "metrics.csv").read_text().count("\n") == 3
