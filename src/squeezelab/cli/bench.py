"""`squeezelab bench`: inference latency, throughput and size per backend, with ratios vs eager."""

from __future__ import annotations

from squeezelab.cli.output import print_json
from squeezelab.errors import SqueezelabError
from squeezelab.export.config import (
    BENCH_BACKENDS,
    DEFAULT_BENCH_BACKENDS,
    DEFAULT_BENCH_BATCHES,
    DEFAULT_BENCH_MODELS,
    MOBILE_BACKENDS,
    REGISTRY_INPUT_SIZE,
)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SqueezelabError(f"--batch-size takes comma-separated integers such as 1,8,32, got {text!r}") from None
    if not values or min(values) < 1:
        raise SqueezelabError(f"--batch-size needs positive batch sizes, got {text!r}")
    return values


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="inference speed and size per backend (PyTorch, ONNX Runtime, OpenVINO, ncnn, ExecuTorch, "
                                            "LiteRT; fp32/int8) or of a model file")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help=f"registry names or model files: .pt and .sqz on every backend, .onnx and other "
                        f"formats on their own engine (default: {' '.join(DEFAULT_BENCH_MODELS)})")
    p.add_argument("--batch-size", "--batch", dest="batch_size", default=",".join(map(str, DEFAULT_BENCH_BATCHES)),
                   help="comma-separated batch sizes")
    p.add_argument("--image-size", "--input-size", dest="image_size", type=int, default=None,
                   help=f"input side in pixels (default: a model file's own, {REGISTRY_INPUT_SIZE} for registry names)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads for PyTorch and ONNX Runtime")
    p.add_argument("--backends", default=",".join(DEFAULT_BENCH_BACKENDS),
                   help=f"comma-separated, from {','.join(BENCH_BACKENDS)} (bf16 and compile are slower on CPUs "
                        f"without BF16/AMX, so not in the default; {','.join(MOBILE_BACKENDS)} are the phone "
                        "runtimes run here on the CPU, batch 1 per call, opt-in as each converts for tens of "
                        "seconds; they need pip install -e '.[mobile]')")
    p.add_argument("--min-seconds", type=float, default=1.0, help="time each figure for at least this long")
    p.add_argument("--json", action="store_true", help="print a JSON list of rows")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelab.export.benchmark import benchmark
    from squeezelab.utils.timing import format_speed_table

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.image_size is not None and args.image_size < 16:
        raise SqueezelabError(f"--image-size must be at least 16, got {args.image_size}")
    rows = benchmark(args.models or DEFAULT_BENCH_MODELS, batches=_int_list(args.batch_size), input_size=args.image_size,
                     backends=backends, threads=args.threads, min_seconds=args.min_seconds)
    if args.json:
        print_json(rows)
    else:
        print(format_speed_table([r for r in rows if "ms_median" in r]))
        for r in rows:
            if "error" in r:
                print(f"{r['model']} {r['backend']} batch {r['batch']}: did not run ({r['error']})")
    return 0
