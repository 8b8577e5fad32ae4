"""Why `squeezelab compare` times latency on 1 thread by default.

Measures batch-1 eager latency of SqueezeNet 1.0 at 224 px on 1 thread and on all cores, in the
same process, and prints the ratio. On an idle machine all cores are faster (ratio < 1); on a
machine where other processes hold cores, multi-threaded PyTorch can be several times slower than
one thread, which is what made single-thread figures the only repeatable ones here.

    .venv/bin/python bench/latency_threads.py
"""

from __future__ import annotations

import os

import torch

from squeezelab import create_model
from squeezelab.utils.timing import time_call


def main() -> None:
    model = create_model("squeezenet1_0").eval()
    x = torch.randn(1, 3, 224, 224)
    cores = len(os.sched_getaffinity(0))
    figures = {}
    with torch.inference_mode():
        for threads in (1, cores, 1, cores):  # interleaved, so a load change hits both alike
            torch.set_num_threads(threads)
            figures.setdefault(threads, []).append(time_call(lambda: model(x), min_seconds=1.0).ms_median)
    one, many = min(figures[1]), min(figures[cores])
    print(f"load average {os.getloadavg()[0]:.1f} on {cores} cores")
    print(f"1 thread: {one:.1f} ms   {cores} threads: {many:.1f} ms   ratio {cores}-thread / 1-thread = {many / one:.2f}")


if __name__ == "__main__":
    main()
