"""The result store's parallel runner: workers never outlive the command that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKER = '''
import os, pathlib, time

def work(item, threads):
    pathlib.Path({folder!r}, f"{{item}}.pid").write_text(str(os.getpid()))
    time.sleep(300)
    pathlib.Path({folder!r}, f"{{item}}.done").write_text("a result file from an orphan")
'''

PARENT = '''
import sys
sys.path.insert(0, {folder!r})
from worker_module import work
from squeezelab.analysis.store import run_parallel
run_parallel(work, ["a", "b", "c"], jobs=2)
'''


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_killing_the_command_ends_its_workers_before_they_write_results(tmp_path):
    (tmp_path / "worker_module.py").write_text(WORKER.format(folder=str(tmp_path)))
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(folder=str(tmp_path))])
    try:
        assert _wait(lambda: len(list(tmp_path.glob("*.pid"))) == 2, 120), "workers did not start"
        pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait(lambda: not any(_alive(pid) for pid in pids), 15), "workers outlived the killed command"
        assert not list(tmp_path.glob("*.done"))
    finally:
        parent.kill()
        for p in tmp_path.glob("*.pid"):
            try:
                os.kill(int(p.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
