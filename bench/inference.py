"""Inference speed of SqueezeNet and its peers per backend, and int8 vs fp32 top-1 agreement.

Prints the `squeezelab bench` table (224x224, batch 1 and 32) for squeezenet1_0, squeezenet1_1,
MobileNetV2, MobileNetV3-small and ShuffleNetV2, every figure beside its ratio to PyTorch eager fp32
measured in the same run, then the deployment goals as ratios:
- deployed fp32 (ONNX Runtime) >= 4x eager at batch 1 for squeezenet1_1;
- int8 >= 2x ONNX Runtime fp32 at batch 32 and >= 1.6x at batch 1;
- int8 top-1 agreement with fp32 >= 99% on real images.
Int8 models are calibrated on real CIFAR-10 training images (../shared/data/cifar10-jpg.tar.gz,
extracted once into a cache folder by bench/_data.py) and the agreement is measured on held-out CIFAR-10 test images.
Speed does not depend on the weights, so the table uses random ones. Agreement does: without
`--checkpoint` it is measured on squeezenet1_1 with random features and a final conv fitted as a
linear probe on CIFAR-10 (see `fit_head`); pass a trained checkpoint when there is one.

    python bench/inference.py                       # full table, about 5 minutes on 2 cores
    python bench/inference.py --quick               # squeezenet1_1 only, shorter timings
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import torch

import squeezelab
from squeezelab.export.benchmark import benchmark_model, ratio
from squeezelab.export.calibration import calibration_batches, labelled_batches
from squeezelab.export.int8 import quantize_int8, top1_agreement
from squeezelab.export.onnx import export_onnx
from squeezelab.utils.timing import format_speed_table

from _data import ARCHIVE as CIFAR  # bench/_data.py: the archive, extracted once into a cache folder
from _data import cifar10_root

MODELS = ["squeezenet1_0", "squeezenet1_1", "tv/mobilenet_v2", "tv/mobilenet_v3_small", "tv/shufflenet_v2_x1_0"]
BACKENDS = ["eager", "channels_last", "ort_fp32", "ort_int8", "ort_int8_qoperator", "ort_int8_s8s8"]


def extract_cifar() -> Path | None:
    """The shared archive's folder (bench/_data.py extracts it once into the cache), or None without it."""
    return cifar10_root() if CIFAR.is_file() else None


def fit_head(model, root: Path, images: int) -> float:
    """Train squeezenet's final 1x1 conv as a linear probe on CIFAR-10 (its features stay random).

    Without the final ReLU, conv10 followed by global average pooling equals a linear map of the
    pooled fire9 features, so multinomial logistic regression on those features gives conv10's
    exact weights. Random weights predict one class for everything, which makes any int8 agreement
    trivial; a fitted head gives real decision margins. Returns the training accuracy.
    """
    from sklearn.linear_model import LogisticRegression

    batches, labels, _ = labelled_batches(root / "train", model.record.preprocessing, limit=images, batch_size=64)
    with torch.inference_mode():
        features = torch.cat([model.features(b).mean((2, 3)) for b in batches]).numpy()
    with warnings.catch_warnings():  # lbfgs may stop at max_iter; the head need not be optimal
        warnings.simplefilter("ignore")
        probe = LogisticRegression(max_iter=300, C=1.0).fit(features, labels.numpy())
    conv = [m for m in model.classifier.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(probe.coef_).float().view_as(conv.weight))
        conv.bias.copy_(torch.from_numpy(probe.intercept_).float())
    return float(probe.score(features, labels.numpy()))


def agreement(model, root: Path, calib_images: int, test_images: int, tmp: Path) -> list[dict]:
    """fp32 vs int8 top-1 agreement and accuracy on held-out real images, per int8 format."""
    calibration = calibration_batches(root / "train", model.record.preprocessing, limit=calib_images, batch_size=32)
    held_out, labels, _ = labelled_batches(root / "test", model.record.preprocessing, limit=test_images, batch_size=32)
    fp32 = tmp / "agree_fp32.onnx"
    export_onnx(model, fp32, dynamic_batch=True, check_inputs=held_out[0])
    rows = []
    for fmt in ("qdq", "qoperator"):
        int8 = tmp / f"agree_{fmt}.onnx"
        quantize_int8(fp32, int8, calibration, format=fmt)
        rows.append({"format": fmt, "calibration_images": sum(len(b) for b in calibration),
                     **top1_agreement(fp32, int8, held_out, labels)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--checkpoint", help="a trained .pt/.sqz for the agreement figure (default: random weights)")
    parser.add_argument("--calib-images", type=int, default=256)
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--probe-images", type=int, default=2000, help="training images for the linear-probe head")
    parser.add_argument("--quick", action="store_true", help="squeezenet1_1 only, 1 s per figure, 300 test images")
    parser.add_argument("--json", help="also write all rows to this JSON file")
    args = parser.parse_args()
    if args.quick:
        args.models, args.min_seconds, args.test_images, args.probe_images = ["squeezenet1_1"], 1.0, 300, 500
    batches = [int(b) for b in args.batches.split(",")]
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory(prefix="squeezelab-bench-") as tmp_name:
        tmp = Path(tmp_name)
        root = extract_cifar()
        calibration = None
        if root is None:
            print(f"note: {CIFAR} is absent: int8 speed models are calibrated on random inputs and the "
                  "agreement part is skipped")
        else:
            preprocessing = squeezelab.create_model("squeezenet1_1").record.preprocessing
            calibration = calibration_batches(root / "train", preprocessing, limit=64, batch_size=32)

        rows = []
        for name in args.models:
            rows += benchmark_model(name, batches=batches, input_size=args.input_size, backends=BACKENDS,
                                    threads=args.threads, min_seconds=args.min_seconds, calibration=calibration)
            print(f"measured {name}", flush=True)
        print()
        print(format_speed_table([r for r in rows if "ms_median" in r]))
        for r in rows:
            if "error" in r:
                print(f"{r['model']} {r['backend']} batch {r['batch']}: did not run ({r['error']})")

        goals = []
        if "squeezenet1_1" in args.models:
            b_small, b_large = min(batches), max(batches)
            goals = [
                (f"ORT fp32 vs eager, squeezenet1_1, batch {b_small}", ratio(rows, "squeezenet1_1", b_small, "ort_fp32", "eager"), 4.0),
                (f"ORT int8 (QDQ U8S8) vs ORT fp32, batch {b_large}", ratio(rows, "squeezenet1_1", b_large, "ort_int8", "ort_fp32"), 2.0),
                (f"ORT int8 (QDQ U8S8) vs ORT fp32, batch {b_small}", ratio(rows, "squeezenet1_1", b_small, "ort_int8", "ort_fp32"), 1.6),
                (f"ORT int8 (QOperator U8S8) vs ORT fp32, batch {b_large}", ratio(rows, "squeezenet1_1", b_large, "ort_int8_qoperator", "ort_fp32"), 2.0),
                (f"ORT int8 (QOperator U8S8) vs ORT fp32, batch {b_small}", ratio(rows, "squeezenet1_1", b_small, "ort_int8_qoperator", "ort_fp32"), 1.6),
            ]
        agreements = []
        if root is not None:
            if args.checkpoint:
                model, label = squeezelab.load_model(args.checkpoint), args.checkpoint
            else:
                model = squeezelab.create_model("squeezenet1_1", num_classes=10, final_relu=False).eval()
                train_accuracy = fit_head(model, root, args.probe_images)
                label = (f"squeezenet1_1 with random features and a linear-probe head fitted on {args.probe_images} "
                         f"CIFAR-10 training images (train accuracy {train_accuracy:.1%})")
            agreements = agreement(model, root, args.calib_images, args.test_images, tmp)
            print(f"\nint8 vs fp32 top-1 agreement, {label}, on held-out CIFAR-10 test JPEGs upscaled to "
                  f"{model.record.preprocessing.crop}:")
            for a in agreements:
                print(f"  {a['format']:<10} {a['top1_agreement']:.2%} of {a['images']} images "
                      f"(calibrated on {a['calibration_images']} training images; max logit diff "
                      f"{a['max_abs_logit_diff']:.3f}; fp32 predicts {a['fp32_classes_predicted']} distinct classes); "
                      f"accuracy fp32 {a['fp32_accuracy']:.2%} -> int8 {a['int8_accuracy']:.2%}")
                if a["fp32_classes_predicted"] < 2:
                    print("  note: fp32 predicts a single class, so agreement is trivial here; pass --checkpoint")
                goals.append((f"top-1 agreement, {a['format']}, %", a["top1_agreement"] * 100, 99.0))
                goals.append((f"int8 accuracy loss vs fp32 in points, {a['format']}",
                              100 * (a["fp32_accuracy"] - a["int8_accuracy"]), -1.0))

        print("\ngoals (ratios from this run):")
        for text, value, target in goals:  # a negative target means "at most -target"
            met = value >= target if target >= 0 else value <= -target
            bound = f">= {target}" if target >= 0 else f"<= {-target}"
            print(f"  {'MET ' if met else 'MISS'}  {text}: {value:.2f} (goal {bound})")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "agreement": agreements}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
