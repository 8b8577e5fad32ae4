"""`squeezelab eval` and `squeezelab predict`: thin wrappers over `squeezelab.evaluate`."""

from __future__ import annotations

from squeezelab.cli.output import print_json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="accuracy, loss, per-class metrics and confusion matrix of a model file")
    p.add_argument("checkpoint", help="a .pt checkpoint (or any model file squeezelab can load)")
    p.add_argument("--data", default=None, help="data spec; default: the validation split recorded in the checkpoint")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--skip-bad-images", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_eval)

    p = subparsers.add_parser("predict", help="class probabilities for image files")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_predict)


def run_eval(args) -> int:
    from squeezelab.evaluate.files import evaluate_file

    result = evaluate_file(args.checkpoint, args.data, batch_size=args.batch_size, skip_bad_images=args.skip_bad_images)
    if args.json:
        print_json(result)
        return 0
    line = f"top-1 {result['top1']:.4f}"
    if result["top5"] is not None:
        line += f"  top-5 {result['top5']:.4f}"
    print(f"{line}  loss {result['loss']:.4f}  on {result['count']} images ({result['data']})")
    print(f"{'class':<20}{'accuracy':>10}{'precision':>11}{'recall':>8}{'support':>9}")
    for c in result["per_class"]:
        print(f"{c['class'][:19]:<20}{c['accuracy']:>10.4f}{c['precision']:>11.4f}{c['recall']:>8.4f}{c['support']:>9}")
    return 0


def run_predict(args) -> int:
    import squeezelab
    from squeezelab.errors import SqueezelabError
    from squeezelab.evaluate import predict

    if args.topk < 1:
        raise SqueezelabError(f"--topk must be >= 1, got {args.topk}")
    results = predict(squeezelab.load_model(args.checkpoint), args.images, topk=args.topk)
    if args.json:
        print_json(results)
        return 0
    for r in results:
        best = ", ".join(f"{p['class']} {p['probability']:.3f}" for p in r["predictions"])
        print(f"{r['path']}: {best}")
    return 0
