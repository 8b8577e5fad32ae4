"""`squeezelab eval` and `squeezelab predict`: thin wrappers over `squeezelab.evaluate`."""

from __future__ import annotations

import csv
import io
import json

from squeezelab.cli.output import print_json
from squeezelab.errors import SqueezelabError

PREDICT_CHUNK = 64  # images decoded at once: a folder of thousands of photos stays within memory


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="accuracy, loss, per-class metrics and confusion matrix of a model file")
    p.add_argument("checkpoint", metavar="MODEL", help="a model file: .pt checkpoint, .sqz, .onnx (int8 too), ...")
    p.add_argument("--data", default=None,
                   help="data spec; default: the validation split recorded in a checkpoint or .sqz (an .onnx file "
                        "records none). Other data than the run's is evaluated whole (a folder's test/ or val/ "
                        "sub-folder when it has one)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--skip-bad-images", action="store_true")
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: average each image's logits with its mirror image's (2x the time)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_eval)

    p = subparsers.add_parser("predict", help="class probabilities for image files or folders of them")
    p.add_argument("checkpoint", metavar="MODEL", help="a model file: .pt checkpoint, .sqz, .onnx (int8 too), ...")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, or folders (every image under them, sorted)")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print a JSON list on stdout")
    p.add_argument("--csv", metavar="OUT.csv", help="write one row per image: path, label, probability, then the "
                   "next classes as label_2, probability_2, ...")
    p.add_argument("--jsonl", metavar="OUT.jsonl", help="write one JSON object per image and line")
    p.set_defaults(func=run_predict)


def run_eval(args) -> int:
    from squeezelab.evaluate.files import evaluate_file

    if args.batch_size < 1:
        raise SqueezelabError(f"--batch-size must be >= 1, got {args.batch_size}")
    result = evaluate_file(args.checkpoint, args.data, batch_size=args.batch_size, skip_bad_images=args.skip_bad_images,
                           flip=args.tta)
    if args.json:
        print_json(result)
        return 0
    line = f"top-1 {result['top1']:.4f}"
    if result["top5"] is not None:
        line += f"  top-5 {result['top5']:.4f}"
    tta = ", each with its mirror image" if result["tta"] else ""
    print(f"{line}  loss {result['loss']:.4f}  on {result['count']} images ({result['images']}{tta})")
    print(f"{'class':<20}{'accuracy':>10}{'precision':>11}{'recall':>8}{'support':>9}")
    for c in result["per_class"]:
        print(f"{c['class'][:19]:<20}{c['accuracy']:>10.4f}{c['precision']:>11.4f}{c['recall']:>8.4f}{c['support']:>9}")
    return 0


def run_predict(args) -> int:
    from squeezelab.data.images import image_files
    from squeezelab.evaluate import predict
    from squeezelab.loading import load_predictor
    from squeezelab.utils.atomic import atomic_write_text

    if args.topk < 1:
        raise SqueezelabError(f"--topk must be >= 1, got {args.topk}")
    paths = image_files(args.images)
    if not paths:
        raise SqueezelabError(f"no image files in {', '.join(args.images)}; expected .jpg, .png, ... files")
    model = load_predictor(args.checkpoint)
    results = []
    for start in range(0, len(paths), PREDICT_CHUNK):
        results.extend(predict(model, paths[start:start + PREDICT_CHUNK], topk=args.topk))
    for name, text in ((args.csv, predictions_csv), (args.jsonl, predictions_jsonl)):
        if name:
            try:
                atomic_write_text(name, text(results))
            except OSError as exc:
                raise SqueezelabError(f"cannot write {name}: {exc.strerror or exc}") from None
    if args.json:
        print_json(results)
        return 0
    for r in results:
        best = ", ".join(f"{p['label']} {p['probability']:.3f}" for p in r["predictions"])
        print(f"{r['path']}: {best}")
    written = [name for name in (args.csv, args.jsonl) if name]
    if written:
        print(f"wrote {' and '.join(written)} ({len(results)} image{'s' if len(results) != 1 else ''})")
    return 0


def predictions_jsonl(results: list[dict]) -> str:
    """One JSON object per image and line, its top class on the first level."""
    lines = []
    for r in results:
        top = r["predictions"][0]
        lines.append(json.dumps({"path": r["path"], "label": top["label"], "probability": top["probability"],
                                 "predictions": r["predictions"]}) + "\n")
    return "".join(lines)


def predictions_csv(results: list[dict]) -> str:
    """path,label,probability[,label_2,probability_2,...] rows, one per image."""
    k = max(len(r["predictions"]) for r in results)
    header = ["path", "label", "probability"] + [f"{c}_{i}" for i in range(2, k + 1) for c in ("label", "probability")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for r in results:
        writer.writerow([r["path"], *(v for p in r["predictions"] for v in (p["label"], p["probability"]))])
    return buffer.getvalue()
