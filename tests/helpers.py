"""Helpers for running the `squeezelab` command in tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

from squeezelab.cli import main

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"

# A data set small enough that a training run takes about a second.
TINY_DATA = "synthetic:n=48,classes=3,size=12"


@dataclasses.dataclass
class Done:
    """What a command left behind, shaped like subprocess.CompletedProcess."""

    returncode: int
    stdout: str
    stderr: str


def run_main(*args) -> Done:
    """`squeezelab ARGS` in this process, stdout and stderr captured; argparse's SystemExit
    becomes the exit code, as it would in a shell."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err = io.StringIO(), io.StringIO()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout, sys.stderr = saved
    return Done(code, out.getvalue(), err.getvalue())


def run_console(*args, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m squeezelab ARGS` in a fresh interpreter, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "squeezelab", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def one_line_error(done, words: str) -> None:
    """The house rule for a user mistake: exit 2, one line on stderr naming it, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert words in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr


def write_small_checkpoint(path, classes):
    """A random squeezenet1_1 checkpoint for `classes` at 64 px (resize 72): the files that export,
    bench and the model-file tests start from, without a training run."""
    import torch

    import squeezelab
    from squeezelab.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = squeezelab.create_model("squeezenet1_1", num_classes=len(classes), final_relu=False)
    preprocessing = {**model.record.preprocessing.to_dict(), "resize": 72, "crop": 64}
    options = {"num_classes": len(classes), "final_relu": False}
    save_checkpoint(path, {"model": {"name": "squeezenet1_1", "options": options}, "state_dict": model.state_dict(),
                           "classes": list(classes), "preprocessing": preprocessing})
    return path


def load_bench(name: str):
    """A script of bench/ as a module, to test its functions without running its main."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
