"""The 32 px training step as a fraction of the machine's GEMM peak, measured in one run.

Peak: the best fp32 matrix multiply (square, 1024-4096) on the threads training uses (one per
core). Step: squeezelab's training path (channels_last, fused kernels, fused SGD) on the
small-image recipe's model and batch, at 32 px; its work is 3x the forward pass's multiply-adds
(forward, backward to the data, backward to the weights), 2 FLOPs each. Rounds alternate the two
measurements so load from other processes hits both alike; figures are medians of the rounds.
`--profile` adds where a step's time goes: convolution forward, backward to the data, backward to
the weights, batch norm, ReLU, pooling, concatenation, bypass additions, the optimizer, the rest.

    python bench/step_vs_peak.py               # the last line: fraction=<step GFLOPS / peak GFLOPS>
    python bench/step_vs_peak.py --profile
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from squeezelab import runtime
from squeezelab.analysis.summary import summarize
from squeezelab.models.config import ModelConfig
from squeezelab.train.config import SMALL_IMAGE_MODEL, SMALL_IMAGE_RECIPE

# where each profiler op's time belongs (anything else is "other")
CATEGORIES = {
    "conv forward": ("mkldnn::_convolution_pointwise", "aten::mkldnn_convolution", "aten::convolution"),
    "conv backward (data + weights)": ("aten::convolution_backward", "aten::bmm", "aten::mm"),
    "batch norm": ("aten::native_batch_norm", "aten::native_batch_norm_backward"),
    "relu": ("aten::clamp_min_", "aten::relu_", "aten::threshold_backward", "aten::relu"),
    "pooling": ("aten::max_pool2d_with_indices", "aten::max_pool2d_with_indices_backward"),
    "concat and copies": ("aten::cat", "aten::copy_", "aten::fill_", "aten::zero_"),
    "bypass add": ("aten::add",),
    "optimizer": ("aten::_fused_sgd_",),
}


def gemm_gflops(n: int, repeats: int = 4) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


class Step:
    """One training step of the recipe's model on a fixed synthetic batch."""

    def __init__(self, model_name: str, batch: int, size: int):
        speed = runtime.SpeedConfig()
        self.config = ModelConfig(model_name, {"num_classes": 10})
        self.model = runtime.prepare_model(self.config.build(), torch.device("cpu"), speed).train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                                         **runtime.optimizer_options(torch.optim.SGD, torch.device("cpu"), speed))
        self.images = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
        self.labels = torch.randint(0, 10, (batch,))
        self.macs = summarize(self.config.build().eval(), input_size=size).total_macs

    def __call__(self) -> None:
        loss = nn.functional.cross_entropy(self.model(self.images), self.labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def gflops(self, steps: int) -> tuple[float, float]:
        """(GFLOPS, images/s) over `steps` steps."""
        start = time.perf_counter()
        for _ in range(steps):
            self()
        seconds = (time.perf_counter() - start) / steps
        return 6 * self.macs * len(self.labels) / seconds / 1e9, len(self.labels) / seconds


def profile(step: Step, steps: int = 3) -> None:
    from torch.profiler import profile as torch_profile

    with torch_profile() as prof:
        for _ in range(steps):
            step()
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        category = next((c for c, ops in CATEGORIES.items() if event.key in ops), "other")
        totals[category] = totals.get(category, 0.0) + event.self_cpu_time_total
    whole = sum(totals.values())
    print("where a step's time goes (self CPU time, profiler on):")
    for category, micros in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {category:<32} {micros / 1e3 / steps:8.1f} ms  {100 * micros / whole:5.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=SMALL_IMAGE_MODEL)
    parser.add_argument("--batch-size", type=int, default=SMALL_IMAGE_RECIPE["batch_size"])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="training steps a round")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    runtime.configure_process(runtime.SpeedConfig())
    step = Step(args.model, args.batch_size, args.size)
    for _ in range(2):  # warm-up: oneDNN picks and caches its kernels
        step()
    peaks, rates, images = [], [], []
    for _ in range(args.rounds):
        peaks.append(max(gemm_gflops(n) for n in (1024, 2048, 4096)))
        gflops, per_second = step.gflops(args.steps)
        rates.append(gflops)
        images.append(per_second)
    peak, rate = statistics.median(peaks), statistics.median(rates)
    print(f"threads {torch.get_num_threads()}; {args.model} at {args.size} px, batch {args.batch_size}, "
          f"{step.macs / 1e6:.1f} M MACs an image; medians of {args.rounds} rounds")
    print(f"GEMM peak (fp32)      {peak:8.1f} GFLOPS")
    print(f"training step         {rate:8.1f} GFLOPS  ({statistics.median(images):.0f} images/s, "
          f"{50000 / statistics.median(images):.0f} s per CIFAR-10 epoch)")
    if args.profile:
        profile(step)
    print(f"fraction={rate / peak:.3f}")


if __name__ == "__main__":
    main()
