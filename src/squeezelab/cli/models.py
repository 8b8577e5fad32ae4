"""`squeezelab models` and `squeezelab summary`: what is in the registry, and Table 1 for one model."""

from __future__ import annotations

from squeezelab.cli.output import print_json
from squeezelab.export.config import REGISTRY_INPUT_SIZE


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the registry with params and MACs per model")
    p.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'squeezenet*'")
    p.add_argument("--image-size", "--input-size", dest="image_size", type=int, default=REGISTRY_INPUT_SIZE,
                   help="input side in pixels")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run_models)

    p = subparsers.add_parser("summary", help="per-layer shapes, params, MACs and bytes (paper Table 1)")
    p.add_argument("name", help="a registry name, e.g. squeezenet1_1")
    p.add_argument("--image-size", "--input-size", dest="image_size", type=int, default=REGISTRY_INPUT_SIZE,
                   help="input side in pixels")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_summary)


def run_models(args) -> int:
    from squeezelab.analysis.summary import summarize
    from squeezelab.models import create_model, list_models
    from squeezelab.models.registry import get_entry

    rows = []
    for name in list_models(args.pattern):
        s = summarize(create_model(name, num_classes=1000), args.image_size)
        entry = get_entry(name)
        rows.append({"name": name, "family": entry.family, "params": s.total_params, "macs": s.total_macs,
                     "size_bytes": s.total_bytes, "description": entry.description})
    if args.json:
        print_json(rows)
    else:
        print(f"{'model':<32}{'params':>12}{'GMACs':>8}{'MiB':>8}  description")
        for r in rows:
            print(f"{r['name']:<32}{r['params']:>12,}{r['macs'] / 1e9:>8.3f}{r['size_bytes'] / 2**20:>8.2f}  {r['description']}")
    return 0


def run_summary(args) -> int:
    from squeezelab.analysis.summary import summarize
    from squeezelab.models import create_model

    summary = summarize(create_model(args.name, num_classes=args.num_classes), args.image_size)
    if args.json:
        print_json(summary.to_dict())
    else:
        print(summary.format_table())
    return 0
