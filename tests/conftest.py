"""Shared fixtures. The package is installed editable (./test does it); never imported by path.

`cli` runs `squeezelab.cli.main(argv)` in this process (no fresh interpreter importing torch per
call); helpers.run_console starts the installed command in a subprocess, kept for what only a
real process shows: signals, torchrun, a server, and the console script itself.
"""

from __future__ import annotations

import json
import signal

import pytest
import torch
from helpers import TINY_DATA, run_main


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Each test starts from seed 0 and gets back the thread count a command it ran may change
    (`--threads`, training's one thread per core) and the SIGCHLD handler (DataLoader workers leave
    torch's behind, and a later child's exit through it can crash the test process)."""
    threads = torch.get_num_threads()
    sigchld = signal.getsignal(signal.SIGCHLD)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
    signal.signal(signal.SIGCHLD, sigchld)


@pytest.fixture
def cli():
    """Run `squeezelab ARGS` in this process: cli("eval", path, "--json") -> returncode, stdout, stderr."""
    return run_main


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One tiny `squeezelab train --json` run shared by the tests that need a trained checkpoint
    (eval, predict, compress, export): (result dict, run folder)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    done = run_main("train", "--data", TINY_DATA, "--epochs", "2", "--batch-size", "16", "--out", out, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), out
