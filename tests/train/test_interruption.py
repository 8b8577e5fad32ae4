"""SIGKILL never corrupts last.pt and --resume matches an uninterrupted run; SIGINT writes a
checkpoint and exits cleanly. The signals go to real subprocesses; the runs they are compared
with go through `main` in this process."""

import json
import os
import signal
import subprocess
import sys
import time

import squeezelab
from squeezelab.train.checkpoint import load_checkpoint

ARGS = ["train", "--data", "synthetic:n=72,classes=3,size=12", "--epochs", "3", "--batch-size", "8", "--json"]


def _start(out, *extra):
    # SIGINT back at its default in the child: a suite started as a background job (nohup ... &, a
    # CI runner) inherits it ignored, and Python then never turns it into KeyboardInterrupt
    return subprocess.Popen([sys.executable, "-m", "squeezelab", *ARGS, *extra, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_epoch(out, epoch, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (out / "last.pt").exists():
            try:
                if load_checkpoint(out / "last.pt")["epoch"] >= epoch:
                    return
            except squeezelab.SqueezelabError:
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("training did not reach the epoch in time")


def test_sigkill_then_resume_matches_uninterrupted(tmp_path, cli):
    full = cli(*ARGS, "--out", tmp_path / "full")
    assert full.returncode == 0, full.stderr
    expected = json.loads(full.stdout)

    out = tmp_path / "killed"
    proc = _start(out)
    _wait_for_epoch(out, 1, proc)
    time.sleep(0.2)  # somewhere inside epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(out / "last.pt")  # never half-written
    assert 1 <= state["epoch"] < 3
    resumed = cli(*ARGS, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    got = json.loads(resumed.stdout)
    assert got["epochs"] == expected["epochs"] == 3
    assert got["best_val_acc"] == expected["best_val_acc"]
    assert abs(got["final_val_loss"] - expected["final_val_loss"]) < 1e-5
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_sigint_saves_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    proc = _start(out, "--epochs", "1000")  # still training when the signal lands
    _wait_for_epoch(out, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert squeezelab.load_model(out / "interrupted.pt").record.classes == ("class0", "class1", "class2")
    assert 1 <= load_checkpoint(out / "last.pt")["epoch"] < 1000
