"""The training step as a fraction of the machine's matrix-multiply peak, in fp32 and in bf16, in one run.

Peak: the best matrix multiply (square, 1024-4096) on the threads training uses (one per core),
in fp32 and in bf16 (where the CPU has AMX tile units, oneDNN's bf16 convolutions run on them;
the bf16 GEMM measures what those units give). Step: `Trainer.train_step`, the step `squeezelab
train` runs (channels_last, fused kernels, fused SGD), on the small-image recipe's model and batch
at 32 px, with `--amp off` (fp32) and `--amp auto` (bf16 where the CPU has AMX-BF16); its work is
3x the forward pass's multiply-adds (forward, backward to the data, backward to the weights), 2
FLOPs each. Each step is read against the peak of the path it uses. Rounds alternate the
measurements so load from other processes hits all alike; figures are medians of the rounds.
`--profile` adds where a step's time goes (convolution forward, backward, batch norm, ...).

    python bench/step_vs_peak.py               # the last line: fraction=<fp32 step GFLOPS / fp32 peak>
    python bench/step_vs_peak.py --profile
    python bench/step_vs_peak.py --model squeezenet1_0 --size 227 --batch-size 32
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from squeezelab import runtime
from squeezelab.analysis.summary import summarize
from squeezelab.models.config import ModelConfig
from squeezelab.train.recipe import SMALL_IMAGE_MODEL, SMALL_IMAGE_RECIPE

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


def gemm_gflops(n: int, dtype: torch.dtype = torch.float32, repeats: int = 4) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


class Step:
    """One `Trainer.train_step` of the model on a fixed synthetic batch, at one precision."""

    def __init__(self, model_name: str, batch: int, size: int, amp: str):
        from squeezelab.data import DataConfig, open_dataset
        from squeezelab.train.config import TrainConfig
        from squeezelab.train.trainer import Trainer

        data = open_dataset(DataConfig(f"synthetic:n={batch},classes=2,size={size}"))  # sizes the schedule only
        config = TrainConfig.given(batch_size=batch, lr=0.01, device="cpu")
        self.config = ModelConfig(model_name, {"num_classes": 10})
        torch.manual_seed(0)
        self.trainer = Trainer(self.config.build(), data, config, speed=runtime.SpeedConfig(amp=amp))
        self.images = torch.randn(batch, 3, size, size)
        self.labels = torch.randint(0, 10, (batch,))
        self.macs = summarize(self.config.build().eval(), input_size=size).total_macs

    def __call__(self) -> None:
        self.trainer.train_step(self.images, self.labels)

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
    parser.add_argument("--profile", action="store_true", help="where a step's time goes (the --amp auto step)")
    args = parser.parse_args()

    runtime.configure_process(runtime.SpeedConfig())
    steps = {"off": Step(args.model, args.batch_size, args.size, "off"),
             "auto": Step(args.model, args.batch_size, args.size, "auto")}
    for step in steps.values():
        for _ in range(2):  # warm-up: oneDNN picks and caches its kernels
            step()
    figures = {name: [] for name in ("peak fp32", "peak bf16", "step off", "step auto", "images off", "images auto")}
    for r in range(args.rounds):
        figures["peak fp32"].append(max(gemm_gflops(n) for n in (1024, 2048, 4096)))
        figures["peak bf16"].append(max(gemm_gflops(n, torch.bfloat16) for n in (1024, 2048, 4096)))
        for amp in (("off", "auto") if r % 2 == 0 else ("auto", "off")):
            gflops, per_second = steps[amp].gflops(args.steps)
            figures[f"step {amp}"].append(gflops)
            figures[f"images {amp}"].append(per_second)
    median = {name: statistics.median(values) for name, values in figures.items()}
    auto = steps["auto"].trainer.precision
    auto_peak = median["peak bf16"] if auto.autocast else median["peak fp32"]
    speedup = statistics.median(a / o for a, o in zip(figures["step auto"], figures["step off"]))
    print(f"threads {torch.get_num_threads()}; {args.model} at {args.size} px, batch {args.batch_size}, "
          f"{steps['off'].macs / 1e6:.1f} M MACs an image; medians of {args.rounds} rounds")
    print(f"GEMM peak fp32        {median['peak fp32']:8.1f} GFLOPS")
    print(f"GEMM peak bf16        {median['peak bf16']:8.1f} GFLOPS")
    print(f"step --amp off        {median['step off']:8.1f} GFLOPS  ({median['images off']:.0f} images/s), "
          f"{median['step off'] / median['peak fp32']:.3f} of the fp32 peak")
    print(f"step --amp auto       {median['step auto']:8.1f} GFLOPS  ({median['images auto']:.0f} images/s), "
          f"{auto.amp} ({auto.reason}), {median['step auto'] / auto_peak:.3f} of the {auto.amp} peak; "
          f"{speedup:.2f}x the fp32 step")
    if args.profile:
        profile(steps["auto"])
    print(f"fraction={median['step off'] / median['peak fp32']:.3f}")


if __name__ == "__main__":
    main()
