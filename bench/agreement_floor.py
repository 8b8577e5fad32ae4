"""How much top-1 agreement a compressed model can be asked for on a folder of images: the model's
agreement with *itself* under changes no one would call a different input.

`squeezelab compress --calib-data` reports top-1 agreement with the uncompressed model on held-out
images. On images the model is unsure about, the top class swaps under any small change, so the
figure says as much about the images as about the compression. This prints, on the same held-out
images `compress` measures on (seeded, disjoint from its calibration images), how confident the
model is and how often its top-1 answer survives a 1-pixel cyclic shift of the input (torch.roll:
the last column wraps to the first), a horizontal flip and Gaussian noise of 1% of the spread of
each weight tensor of 2 or more dimensions (convolution and linear weights).

    python bench/agreement_floor.py m.pt --images FOLDER [--held-out-images 1000] [--calib-images 128] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import json

import torch

from squeezelab.compress import datafree
from squeezelab.errors import SqueezelabError
from squeezelab.train.checkpoint import load_checkpoint, model_from_checkpoint


def weight_noise(model: torch.nn.Module, relative: float, seed: int = 0) -> torch.nn.Module:
    """A copy of `model` with N(0, (relative * std)^2) added to every parameter of 2 or more
    dimensions (convolution and linear weights; biases and batch-norm scales stay)."""
    noisy = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight in noisy.parameters():
            if weight.dim() > 1:
                weight.add_(torch.randn(weight.shape, generator=generator) * weight.std() * relative)
    return noisy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--images", required=True, help="a folder of images, searched recursively")
    parser.add_argument("--held-out-images", type=int, default=1000, help="as `squeezelab compress`'s")
    parser.add_argument("--calib-images", type=int, default=128, help="as `squeezelab compress`'s (skipped here)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        model = model_from_checkpoint(load_checkpoint(args.checkpoint)).eval()
        prep = model.record.preprocessing
        _, held = datafree.split_images(args.images, args.calib_images, args.held_out_images, args.seed)
        images = datafree.load_images(held, prep)
    except SqueezelabError as exc:
        raise SystemExit(f"agreement_floor: {exc}") from None
    reference = datafree.logits(model, images, prep)
    top2 = reference.softmax(1).topk(2, dim=1).values
    rows = {
        "images": len(images),
        "held_out": [str(path) for path in held],
        "median_top1_probability": float(top2[:, 0].median()),
        "median_margin_over_second": float((top2[:, 0] - top2[:, 1]).median()),
        "agreement_shift_1px": datafree.top1_agreement(datafree.logits(model, torch.roll(images, 1, dims=3), prep), reference),
        "agreement_flip": datafree.top1_agreement(datafree.logits(model, torch.flip(images, dims=[3]), prep), reference),
        "agreement_weight_noise_1pct": datafree.top1_agreement(
            datafree.logits(weight_noise(model, 0.01, args.seed), images, prep), reference),
    }
    for key, value in rows.items():
        if key == "held_out":
            continue
        print(f"{key:30s} {value:.4f}" if isinstance(value, float) else f"{key:30s} {value}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
