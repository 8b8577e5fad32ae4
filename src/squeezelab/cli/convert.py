"""`squeezelab convert`: the paper's released Deep Compression SqueezeNet into a squeezelab file."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert the released compressed_SqueezeNet.net into a checkpoint (.pt) or .sqz file",
        description="decode the SqueezeNet paper's released Deep Compression model (ImageNet, v1.0) into a file "
        "every command takes: a .pt checkpoint (dense weights, pruning kept as zeros) or a .sqz (its own 256-entry "
        "codebooks, Huffman-coded). Classes are the 1000 ImageNet names with their WordNet ids; input is Caffe's "
        "(BGR, 0-255, mean 104/117/123, 227 crop).",
    )
    p.add_argument("source", metavar="FILE.net", help="compressed_SqueezeNet.net")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the .pt or .sqz file to write")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelab.cli.output import print_json
    from squeezelab.convert import convert_released

    summary = convert_released(args.source, args.output)
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {summary['output']} ({summary['bytes']:,} bytes, {summary['format']}): squeezenet1_0, "
              f"{summary['classes']} ImageNet classes, {summary['nonzero_weights']:,} of {summary['weights']:,} "
              f"weights non-zero, from {summary['source_bytes']:,} bytes")
    return 0
