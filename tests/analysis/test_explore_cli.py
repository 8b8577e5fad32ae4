"""`squeezelab explore` end to end with the real trainer: killed mid-sweep, then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import run_console

# A cheap honest sweep: the standard stem (stride 2 and a pool) at 24 px keeps a point near
# 4 MMACs; 160 synthetic images make an epoch of seconds, still far longer than the
# 0.2 s it takes to notice the first point's file and kill the sweep before the second ends.
ARGS = ["explore", "--sweep", "sr=0.125,0.25", "--data", "synthetic:n=160,classes=4,size=24",
        "--model-option", "stem=standard", "--epochs", "1", "--seeds", "1"]


def _finished(out):
    return sorted(p.name for p in (out / "points").glob("*.json")) if (out / "points").is_dir() else []


def test_explore_killed_after_a_point_resumes_without_retraining_it(tmp_path, cli):
    out = tmp_path / "sweep"
    first = subprocess.Popen([sys.executable, "-m", "squeezelab", *ARGS, "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 600
    while not _finished(out) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # no clean-up code runs: what a power cut or OOM kill does
    first.wait()
    finished = _finished(out)
    assert len(finished) == 1, first.stderr.read().decode()[-2000:]
    assert not list((out / "points").glob(".*.tmp"))  # atomic: nothing half-written was left behind

    done = cli(*ARGS, "--out", out, "--json")  # the resume runs in this process
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert (result["skipped"], result["trained"]) == (1, 1)
    rows = result["sweeps"]["sr"]
    assert [r["squeeze_ratio"] for r in rows] == [0.125, 0.25]
    assert rows[0]["params"] < rows[1]["params"]
    assert all(r["seeds"] == 1 and r["accuracy_min"] == r["accuracy_mean"] == r["accuracy_max"] for r in rows)
    # the point the killed run finished (SR 0.125, first in the sweep) is reused from its file
    assert rows[0]["accuracy_mean"] == json.loads((out / "points" / finished[0]).read_text())["accuracy"]
    assert (out / "explore_sr.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "explore.json").read_text())["sweeps"]["sr"] == rows


@pytest.mark.slow
def test_explore_in_parallel_processes_matches_points_and_bypass(tmp_path):
    out = tmp_path / "sweep"
    done = run_console("explore", "--sweep", "pct3x3=0.25,0.75", "--bypass", "none,simple", "--data", "digits",
               "--image-size", "24", "--model-option", "stem=standard", "--epochs", "1", "--seeds", "1",
               "--jobs", "2", "--out", str(out), "--json", timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["trained"] == 4 and len(_finished(out)) == 4
    assert (out / "explore_pct3x3.png").is_file() and (out / "explore_bypass.png").is_file()
