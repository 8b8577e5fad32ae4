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


# Rank 1's loss guard trips at its second step; rank 0 sees nothing wrong with its own losses.
_ONE_RANK_STOPS = """
import os, sys
from squeezelab.train import guard
from squeezelab.cli import main

if os.environ["RANK"] == "1":
    real = guard.LossGuard.problem
    def problem(self, loss, epoch, step):
        return real(self, float("nan") if step == 1 else loss, epoch, step)
    guard.LossGuard.problem = problem
sys.exit(main(sys.argv[1:]))
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_loss_guard_on_one_rank_ends_every_rank_with_one_line(tmp_path):
    port = str(_free_port())
    argv = [sys.executable, "-c", _ONE_RANK_STOPS, "train", "--data", "synthetic:n=96,classes=3,size=12",
            "--epochs", "2", "--batch-size", "8", "--device", "cpu", "--out", str(tmp_path / "ddp")]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "RANK": str(rank), "LOCAL_RANK": str(rank),
                                   "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port})
             for rank in (0, 1)]
    try:
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for rank, (p, (_out, err)) in enumerate(zip(procs, outputs)):
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith("training ")]
        assert p.returncode == 2, (rank, err[-2000:])
        assert "Traceback" not in err and len(lines) == 1, (rank, err[-2000:])
    assert "loss became nan" in outputs[1][1]
    assert "another training process stopped the run" in outputs[0][1]
