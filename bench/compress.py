"""Deep Compression benchmark: file sizes against the paper, encode/decode time, accuracy kept.

Part 1, squeezenet1_0 at 1000 classes (random weights: no pretrained file is reachable here), at
the paper's settings (about 33% of the weights kept, 8-bit and 6-bit shared weights), with the
uniform per-layer density and with the released model's per-layer profile. Sizes are compared
with the paper's 0.66 MB / 0.47 MB; times are printed in seconds and as a ratio to one batch-1
forward pass of the same model measured in the same run (the machine is shared and noisy).

Biases are drawn at random too (torchvision initialises them to zero, which the file would store
as one constant, unlike any trained model's).

Part 2 (needs the trainer): train the default digits model, compress it with the default recipe
of `squeezelab compress` (and two other settings), and compare its .sqz size with the fp32 state
dict and its validation accuracy before and after; the goal is >= 30x with <= 1 point lost.

    nice .venv/bin/python bench/compress.py [--skip-digits] [--digits-epochs 12] [--threads 2]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time

import torch

from squeezelab import create_model
from squeezelab.compress import PruneConfig, QuantConfig, decode, encode, overall_density, paper_density_table, prune, quantize_
from squeezelab.compress.pipeline import fp32_bytes

print = functools.partial(print, flush=True)  # progress shows up when piped to a file

PAPER_BYTES = {8: 660_000, 6: 470_000}  # SqueezeNet paper, Table 2 ("0.66 MB", "0.47 MB")
RELEASED_8BIT_BYTES = 675_763  # songhan/SqueezeNet-Deep-Compression's file (its size on disk)


def forward_seconds(model) -> float:
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        model(x)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return sorted(times)[1]


def imagenet_part() -> None:
    reference = forward_seconds(create_model("squeezenet1_0").eval())
    print(f"reference: squeezenet1_0 batch-1 forward {reference * 1000:.1f} ms")
    print(f"{'profile':<9} {'bits':>4} {'density':>8} {'bytes':>9} {'paper':>9} {'vs paper':>8} "
          f"{'quantize s':>10} {'encode s':>9} {'decode s':>9} {'enc/fwd':>8} {'dec/fwd':>8}")
    for profile in ("uniform", "released"):
        for bits in (8, 6):
            torch.manual_seed(0)
            model = create_model("squeezenet1_0").eval()
            with torch.no_grad():
                for module in model.modules():
                    if isinstance(module, torch.nn.Conv2d):
                        module.bias.uniform_(-0.1, 0.1)
            fp32 = fp32_bytes(model)
            densities = paper_density_table(model) if profile == "released" else None
            prune(model, PruneConfig(sparsity=0.67, densities=densities))
            t = time.perf_counter()
            quantize_(model, QuantConfig(bits=bits))
            t_quant = time.perf_counter() - t
            t = time.perf_counter()
            data, _ = encode(model)
            t_enc = time.perf_counter() - t
            t = time.perf_counter()
            loaded = decode(data)
            t_dec = time.perf_counter() - t
            x = torch.randn(2, 3, 224, 224)
            with torch.no_grad():
                assert torch.equal(loaded(x), model(x)), "decoded model differs"
            paper = PAPER_BYTES[bits]
            print(f"{profile:<9} {bits:>4} {overall_density(model):>8.1%} {len(data):>9,} {paper:>9,} "
                  f"{len(data) / paper:>8.2f} {t_quant:>10.2f} {t_enc:>9.2f} {t_dec:>9.2f} "
                  f"{t_enc / reference:>8.1f} {t_dec / reference:>8.1f}   (fp32 {fp32:,} B, {fp32 / len(data):.1f}x)")
    print(f"(the released 8-bit file is {RELEASED_8BIT_BYTES:,} bytes)")


DIGITS_SETTINGS = {  # label: CompressConfig options
    "default": {},
    "default, 4-bit": {"bits": 4},
    "paper (uniform 0.67, 8-bit, one round)": {"layer_policy": "uniform", "sparsity_3x3": 0.67, "bits": 8,
                                               "prune_steps": 1, "finetune_epochs": 1},
}


def digits_part(epochs: int) -> None:
    from squeezelab.compress.run import compress_checkpoint
    from squeezelab.compress.config import CompressConfig
    from squeezelab.data import DataConfig
    from squeezelab.train.config import TrainConfig
    from squeezelab.train.run import train

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        result = train(data_config=DataConfig("digits"), train_config=TrainConfig(epochs=epochs), out=tmp)
        print(f"digits: trained {epochs} epochs in {time.perf_counter() - t:.0f} s, best val acc {result['best_val_acc']:.4f}")
        print(f"{'recipe':<40} {'fp32 B':>9} {'sqz B':>8} {'ratio':>6} {'acc before':>10} {'acc after':>9} "
              f"{'loss pts':>8} {'goal':>5}")
        for label, options in DIGITS_SETTINGS.items():
            report = compress_checkpoint(result["checkpoint"], f"{tmp}/m.sqz", CompressConfig(**options))
            loss = 100 * (report.acc_before - report.acc_after)
            goal = "met" if report.ratio >= 30 and loss <= 1 else "no"
            print(f"{label:<40} {report.original_bytes:>9,} {report.compressed_bytes:>8,} {report.ratio:>6.1f} "
                  f"{report.acc_before:>10.4f} {report.acc_after:>9.4f} {loss:>8.2f} {goal:>5}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--digits-epochs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    imagenet_part()
    if not args.skip_digits:
        digits_part(args.digits_epochs)


if __name__ == "__main__":
    main()
