"""bench/ scripts import their sibling bench/_data.py as `python bench/X.py` lets them (Python puts
the script's folder first on sys.path); `load_bench` runs them in this process, so the folder is
put there for the tests of bench/ too."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = str(Path(__file__).resolve().parents[2] / "bench")
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)
