"""`squeezelab compress`: Deep Compression of a checkpoint into a .sqz file, with a size/accuracy report."""

from __future__ import annotations

import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compress",
        help="prune, share weights and Huffman-code a checkpoint into a .sqz file",
        description="prune -> fine-tune -> quantize -> fine-tune -> encode (Deep Compression), then report "
        "per-layer density/bits/bytes, total sizes and accuracy before/after on the validation data.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a .pt checkpoint written by `squeezelab train`")
    p.add_argument("-o", "--output", required=True, metavar="OUT.sqz", help="the compressed file to write")
    p.add_argument("--sparsity", type=float, default=0.67, help="fraction of weights removed per layer (default 0.67: a third kept, as the paper)")
    p.add_argument("--bits", type=int, default=8, help="bits per shared weight, 1-8 (default 8; the paper also reports 6)")
    p.add_argument("--fc-bits", type=int, default=None, help="bits for the classifier layer (default: --bits)")
    p.add_argument("--finetune-epochs", type=int, default=1, help="fine-tuning epochs after pruning and after quantizing (default 1)")
    p.add_argument("--data", default=None, metavar="SPEC", help="data to fine-tune/evaluate on (default: the checkpoint's, with its validation split)")
    p.add_argument("--lr", type=float, default=0.001, help="fine-tuning learning rate (AdamW; default 0.001)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--report-dir", default=None, help="where report.json/.txt and weights.png go (default: OUT_report/)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelab.cli.output import print_json
    from squeezelab.compress.pipeline import CompressConfig, format_report
    from squeezelab.compress.run import compress_checkpoint

    config = CompressConfig(sparsity=args.sparsity, bits=args.bits, fc_bits=args.fc_bits, finetune_epochs=args.finetune_epochs)
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    report = compress_checkpoint(
        args.checkpoint, args.output, config, data_spec=args.data, report_dir=args.report_dir,
        lr=args.lr, batch_size=args.batch_size, log=log,
    )
    if args.json:
        print_json({**report.to_dict(), "output": args.output, "report_dir": report.report_dir})
    else:
        print(format_report(report))
        print(f"wrote {args.output}; report and weight plot in {report.report_dir}")
    return 0
