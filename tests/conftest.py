"""Shared fixtures. The package is installed editable (./test does it); never imported by path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


def run_cli(*args: str, timeout: float = 300, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """Run `python -m squeezelab ARGS` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "squeezelab", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def cli():
    return run_cli
