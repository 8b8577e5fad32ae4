"""`squeezelab explore`, `compare` and `report`: the design space, the peers, and a page to look at."""

from __future__ import annotations

from pathlib import Path

from squeezelab.cli.output import AMP_CHOICES, AMP_HELP, print_json
from squeezelab.cli.output import say as _say
from squeezelab.errors import SqueezelabError
from squeezelab.utils.config import parse_options
from squeezelab.export.config import REGISTRY_INPUT_SIZE


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("explore", help="train a sweep of SqueezeNet metaparameters (paper Sections 5-6)")
    p.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2",
                   help="one metaparameter to vary, others at SqueezeNet 1.0's values: sr, pct3x3, base_e, "
                        "incr_e or freq (repeatable), e.g. --sweep sr=0.125,0.25,0.5,0.75,1.0")
    p.add_argument("--bypass", help="bypass kinds to compare, e.g. none,simple,complex")
    p.add_argument("--data", default="digits", help="data spec: digits, synthetic, cifar10:ROOT, a folder (default digits)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--image-size", "--input-size", dest="image_size", type=int,
                   help="resize the data to this side (default: the data's own)")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per point (accuracy mean and spread)")
    p.add_argument("--out", default="runs/explore", help="results, plots and one file per finished run (resumable)")
    p.add_argument("--jobs", type=int, default=1, help="train this many points at once in separate processes")
    p.add_argument("--model-option", action="append", metavar="KEY=VALUE", help="e.g. batch_norm=false")
    p.add_argument("--train-option", action="append", metavar="KEY=VALUE", help="e.g. lr=0.1 or batch_size=128")
    p.add_argument("--amp", choices=AMP_CHOICES, default="auto", help=AMP_HELP)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_explore)

    p = subparsers.add_parser("compare", help="SqueezeNet vs MobileNet, ShuffleNet, AlexNet: size, MACs, speed, accuracy")
    p.add_argument("--models", help="comma-separated registry names (default: "
                                    "squeezenet1_0,squeezenet1_1,tv/mobilenet_v2,tv/mobilenet_v3_small,"
                                    "tv/shufflenet_v2_x1_0,tv/alexnet, and squeezenet_cifar first on images of "
                                    "64 px or less)")
    p.add_argument("--data", help="train every model on this data with the same recipe (e.g. digits, or a folder "
                                  "with train/ and test/: the final models are scored on test/)")
    p.add_argument("--epochs", type=int, default=5, help="the same fixed budget for every model (default 5)")
    p.add_argument("--seeds", type=int, default=2, help="trainings per model: accuracy mean and spread (default 2)")
    p.add_argument("--stem", choices=["auto", "cifar", "imagenet"], default="auto",
                   help="auto (default): CIFAR-port stems for every model on images of 64 px or less, so a 32 px "
                        "image ends at about 4x4 in all of them; ImageNet stems otherwise")
    p.add_argument("--jobs", type=int, default=1, help="train this many models at once in separate processes")
    p.add_argument("--no-train", action="store_true", help="only measure params, MACs, size and latency")
    p.add_argument("--image-size", "--input-size", dest="image_size", type=int, default=None,
                   help="input side: the data is resized to it when training (64 lets AlexNet run on digits), models "
                        f"are measured at it with --no-train (default: the data's own, or {REGISTRY_INPUT_SIZE})")
    p.add_argument("--min-seconds", type=float, default=0.5, help="time each latency for at least this long")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for latency (default 1: the figure that repeats on a shared machine; 0: all cores)")
    p.add_argument("--train-option", action="append", metavar="KEY=VALUE", help="e.g. lr=0.1")
    p.add_argument("--amp", choices=AMP_CHOICES, default="auto", help=AMP_HELP)
    p.add_argument("--squeezenet-option", action="append", metavar="KEY=VALUE",
                   help="option for the SqueezeNet models only, e.g. stem=small (wins over --stem)")
    p.add_argument("--peer-option", action="append", metavar="KEY=VALUE",
                   help="option for the other models only, e.g. init=he (He initialisation for AlexNet)")
    p.add_argument("--out", help="write compare.md, compare.csv, compare.json and the plots here")
    p.add_argument("--json", action="store_true", help="print {data, rows: [...]} as JSON")
    p.set_defaults(func=run_compare)

    p = subparsers.add_parser("report", help="one self-contained HTML page of a run folder's outputs")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--output", default=None, help="the page to write (default: RUN_DIR/report.html)")
    p.add_argument("--title")
    p.set_defaults(func=run_report)


def run_explore(args) -> int:
    from squeezelab.analysis.explore import ExploreConfig, explore, parse_bypass, parse_sweep

    if args.epochs < 1 or args.jobs < 1:
        raise SqueezelabError("--epochs and --jobs must be >= 1")
    sweeps = dict(parse_sweep(text) for text in args.sweep)
    config = ExploreConfig(sweeps=sweeps, bypass=parse_bypass(args.bypass) if args.bypass else (),
                           data=args.data, epochs=args.epochs, seeds=args.seeds, image_size=args.image_size,
                           model_options=parse_options(args.model_option, "--model-option"),
                           train_options=parse_options(args.train_option, "--train-option"), amp=args.amp)
    result = explore(config, args.out, jobs=args.jobs, log=_say)
    if args.json:
        print_json(result)
        return 0
    for name, rows in result["sweeps"].items():
        print(f"sweep {name}:")
        for r in rows:
            value = r["bypass"] if name == "bypass" else r[{"sr": "squeeze_ratio"}.get(name, name)]
            print(f"  {value!s:>8}  {r['params']:>10,} params  {r['size_bytes'] / 1e6:6.2f} MB  "
                  f"{r['macs'] / 1e6:8.1f} MMACs  top-1 {100 * r['accuracy_mean']:5.1f}% "
                  f"(min {100 * r['accuracy_min']:.1f}, max {100 * r['accuracy_max']:.1f}, {r['seeds']} seeds)")
    print(f"wrote {args.out}/explore.json and {', '.join(result['plots'].values())}")
    return 0


def run_compare(args) -> int:
    from squeezelab.analysis.compare import CompareConfig, compare, to_text

    models = tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models else None
    if not args.no_train and not args.data:
        raise SqueezelabError("compare trains every model: give --data SPEC (e.g. digits), or --no-train to only measure")
    sizes = {"input_size": args.image_size or REGISTRY_INPUT_SIZE} if args.no_train else {"image_size": args.image_size}
    if args.jobs < 1:
        raise SqueezelabError(f"--jobs must be >= 1, got {args.jobs}")
    config = CompareConfig(models=models, data=None if args.no_train else args.data, epochs=args.epochs,
                           seeds=args.seeds, stem=args.stem, **sizes, min_seconds=args.min_seconds,
                           threads=args.threads or None,
                           train_options=parse_options(args.train_option, "--train-option"),
                           squeezenet_options=parse_options(args.squeezenet_option, "--squeezenet-option"),
                           peer_options=parse_options(args.peer_option, "--peer-option"), amp=args.amp)
    result = compare(config, args.out, jobs=args.jobs, log=_say)
    if args.json:
        print_json(result)
        return 0
    print(to_text(result["rows"]))
    for r in result["rows"]:
        if r.get("latency_error"):
            print(f"{r['model']}: {r['latency_error']}")
    if result["files"]:
        print("wrote " + ", ".join(result["files"].values()))
    return 0


def run_report(args) -> int:
    from squeezelab.analysis.summary import summarize_run
    from squeezelab.report.html import write_report

    output = args.output or Path(args.run_dir) / "report.html"
    path = write_report(args.run_dir, output, title=args.title, summary=summarize_run(args.run_dir))
    print(f"wrote {path}")
    return 0
