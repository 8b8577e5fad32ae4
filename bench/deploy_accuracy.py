"""Every deployment format of one trained model, scored on real labelled test images.

Exports the model the way `squeezelab export` does (`export.model.export_model`): ONNX fp32,
squeezelab's int8 (ONNX Runtime, QDQ U8S8), OpenVINO fp32 and int8 (NNCF), ncnn fp32, each
calibrated on `--calib-data` (images disjoint from the test images), then runs every file through
the loader `eval`, `predict` and `serve` use, and prints per format: top-1 accuracy on the test
images, the points lost against PyTorch, top-1 agreement with PyTorch, and the largest absolute
logit difference. Speed is bench/runtimes.py's job.

    python bench/deploy_accuracy.py cifar10.pt --test ~/.cache/squeezelab/cifar10-jpg/test \\
        --calib-data ~/.cache/squeezelab/cifar10-jpg/train [--images 10000] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

import squeezelab
from squeezelab.export.calibration import labelled_batches
from squeezelab.export.model import export_model
from squeezelab.loading import load_predictor

FORMATS = [  # (row, file name)
    ("pytorch_fp32", None),
    ("onnx_fp32", "m.onnx"),
    ("ort_int8", "m.int8.onnx"),
    ("openvino_fp32", "ov.xml"),
    ("openvino_int8", "ov.int8.xml"),
    ("ncnn_fp32", "ncnn.param"),  # its own stem: OpenVINO and ncnn both keep weights in <stem>.bin
]


def export_all(model: torch.nn.Module, checkpoint: str, calib_data: str, folder: Path) -> dict[str, Path]:
    """row -> the written file, for every format (int8 files come with their fp32 export)."""
    export_model(model, folder / "m.onnx", dynamic_batch=True, int8=True, calib_data=calib_data)
    export_model(model, folder / "ov.xml", format="openvino", int8=True, calib_data=calib_data)
    export_model(model, folder / "ncnn.param", format="ncnn")
    return {row: (Path(checkpoint) if name is None else folder / name) for row, name in FORMATS}


def logits_of(path: Path, batches: list[torch.Tensor]) -> torch.Tensor:
    predictor = load_predictor(path)
    return torch.cat([predictor.predict_logits(batch) for batch in batches])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a trained .pt (or .sqz)")
    parser.add_argument("--test", required=True, help="labelled test images: FOLDER/<class>/<image>")
    parser.add_argument("--calib-data", required=True, help="calibration images, disjoint from --test")
    parser.add_argument("--images", type=int, default=10000, help="test images to score (spread over the classes)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()

    model = squeezelab.load_model(args.checkpoint)
    record = model.record
    batches, labels, folder_classes = labelled_batches(args.test, record.preprocessing, limit=args.images, batch_size=250)
    missing = sorted(set(folder_classes) - set(record.classes))
    if missing:
        raise SystemExit(f"{args.test} has classes the model does not know: {missing}")
    labels = torch.tensor([list(record.classes).index(folder_classes[i]) for i in labels])
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = export_all(model, args.checkpoint, args.calib_data, Path(tmp))
        reference = logits_of(files["pytorch_fp32"], batches)
        for row, path in files.items():
            logits = reference if row == "pytorch_fp32" else logits_of(path, batches)
            rows[row] = {"top1": round((logits.argmax(1) == labels).float().mean().item(), 4),
                         "agreement": round((logits.argmax(1) == reference.argmax(1)).float().mean().item(), 4),
                         "max_abs_logit_diff": float(f"{(logits - reference).abs().max().item():.3g}"),
                         "size_bytes": sum(p.stat().st_size for p in [path, path.with_suffix(".bin")] if p.exists())}
    base = rows["pytorch_fp32"]["top1"]
    print(f"{len(labels)} test images of {args.test}; calibration: {args.calib_data}")
    print(f"{'format':<15} {'top-1':>7} {'vs fp32':>8} {'agreement':>10} {'max |dlogit|':>13} {'bytes':>10}")
    for row, r in rows.items():
        r["points_lost"] = round(100 * (base - r["top1"]), 2)
        print(f"{row:<15} {r['top1']:>7.2%} {-r['points_lost']:>+8.2f} {r['agreement']:>10.2%} "
              f"{r['max_abs_logit_diff']:>13.3g} {r['size_bytes']:>10,}")
    if args.json:
        print(json.dumps({"images": len(labels), "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
