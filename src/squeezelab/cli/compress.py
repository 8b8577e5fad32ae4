"""`squeezelab compress`: Deep Compression of a checkpoint into a .sqz file, with a size/accuracy report."""

from __future__ import annotations

import sys
from pathlib import Path

from squeezelab.compress.config import (METHODS, LAYER_POLICIES, RAW_FLOAT_DTYPES, SENSITIVITIES, CalibConfig,
                                        CompressConfig, FinetuneConfig)
from squeezelab.cli.output import AMP_CHOICES, AMP_HELP
from squeezelab.errors import SqueezelabError

_DEFAULTS = CompressConfig()
_TUNING = FinetuneConfig()
_CALIB = CalibConfig()


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "compress",
        help="prune, share weights and Huffman-code a checkpoint into a .sqz file",
        description="prune gradually with fine-tuning -> share weights -> fine-tune -> encode (Deep Compression), then report "
        "per-layer density/bits/bytes, total sizes and accuracy before/after on the validation data.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a .pt checkpoint written by `squeezelab train`")
    p.add_argument("-o", "--output", required=True, metavar="OUT.sqz", help="the compressed file to write")
    p.add_argument("--sparsity", dest="sparsity_3x3", type=float, default=_DEFAULTS.sparsity_3x3,
                   help="fraction of weights removed from the 3x3 layers; the first conv, 1x1 layers and classifier keep "
                   "6.25x, 2.5x, 3.75x as many (--layer-policy squeezenet; default %(default)s: 10.9%% of squeezenet1_1 kept)")
    p.add_argument("--layer-policy", choices=list(LAYER_POLICIES), default=_DEFAULTS.layer_policy,
                   help="uniform: remove --sparsity of every layer (the paper's 0.67 keeps a third)")
    p.add_argument("--bits", type=int, default=_DEFAULTS.bits,
                   help="bits per shared weight, 1-8 (default %(default)s; the paper used 8 and 6 on ImageNet)")
    p.add_argument("--fc-bits", type=int, default=_DEFAULTS.fc_bits, help="bits for the classifier layer (default: --bits)")
    p.add_argument("--finetune-epochs", type=int, default=_DEFAULTS.finetune_epochs,
                   help="fine-tuning epochs after each pruning round and after quantizing")
    p.add_argument("--prune-steps", type=int, default=_DEFAULTS.prune_steps,
                   help="gradual pruning rounds, each followed by fine-tuning")
    p.add_argument("--data", default=None, metavar="SPEC", help="data to fine-tune/evaluate on (default: the checkpoint's, with its validation split)")
    p.add_argument("--lr", type=float, default=_TUNING.lr, help="peak learning rate of fine-tuning after pruning (SGD, Nesterov)")
    p.add_argument("--centroid-lr", type=float, default=_TUNING.centroid_lr, help="peak learning rate of fine-tuning the shared weights")
    p.add_argument("--raw-dtype", choices=list(RAW_FLOAT_DTYPES), default=_DEFAULTS.raw_dtype,
                   help="how batch norm and biases are stored")
    p.add_argument("--batch-size", type=int, default=_TUNING.batch_size)
    p.add_argument("--seed", type=int, default=_TUNING.seed,
                   help="the order of the fine-tuning and calibration batches; with --calib-data, which images "
                   "calibrate and which are held out (default %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--amp", choices=AMP_CHOICES, default=FinetuneConfig().amp, help="the fine-tuning's " + AMP_HELP)
    p.add_argument("--report-dir", default=None, help="where report.json/.txt and weights.png go (default: OUT_report/)")
    p.add_argument("--calib-data", default=None, metavar="FOLDER",
                   help="compress without the training data: unlabelled images (any layout) decide each layer's density "
                   "and bits by its sensitivity, the codebooks are refined to match the uncompressed model, and "
                   "top1_agreement with it is measured on held-out images of the folder (--sparsity, --bits, "
                   "--finetune-epochs and --data do not apply)")
    p.add_argument("--target-bytes", type=int, default=_CALIB.target_bytes,
                   help="with --calib-data, the whole .sqz file's size (default: 3/4 of the model at 8 bits)")
    p.add_argument("--method", choices=list(METHODS), default=_CALIB.method,
                   help="gptq prunes and shares each layer compensating its errors on its inputs' statistics (training "
                   "batches, or with --calib-data the calibration images), layer by layer on the compressed model's "
                   "inputs; kmeans prunes by magnitude and shares by plain k-means (default %(default)s)")
    p.add_argument("--calib-images", type=int, default=_CALIB.calibration_images, help="with --calib-data, images to calibrate on")
    p.add_argument("--held-out-images", type=int, default=_CALIB.held_out_images,
                   help="with --calib-data, other images of the folder to measure agreement on")
    p.add_argument("--distill-epochs", type=int, default=_CALIB.distill_epochs,
                   help="with --calib-data, passes of codebook refinement over the calibration images")
    p.add_argument("--sensitivity", choices=list(SENSITIVITIES), default=_CALIB.sensitivity,
                   help="with --calib-data, what a layer setting costs: the whole model's output change (network, "
                        "one forward pass per layer and setting) or the layer's own (layer, faster)")
    p.add_argument("--sensitivity-images", type=int, default=_CALIB.sensitivity_images,
                   help="with --calib-data, calibration images the sensitivity is measured on")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from squeezelab.cli.output import print_json, say
    from squeezelab.compress.run import compress_checkpoint
    from squeezelab.report.compression import format_compression_report

    if Path(args.checkpoint).suffix.lower() in (".sqz", ".onnx"):
        raise SqueezelabError(f"compress needs a .pt checkpoint written by `squeezelab train`; {args.checkpoint} is "
                              f"already an exported model ({Path(args.checkpoint).suffix.lower()})")
    tuning = FinetuneConfig(lr=args.lr, centroid_lr=args.centroid_lr, batch_size=args.batch_size, seed=args.seed,
                            amp=args.amp)
    if args.threads is not None:
        if args.threads < 1:
            raise SqueezelabError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    if args.calib_data is not None:
        return _run_calibrated(args)
    config = CompressConfig(sparsity_3x3=args.sparsity_3x3, bits=args.bits, fc_bits=args.fc_bits,
                            finetune_epochs=args.finetune_epochs, layer_policy=args.layer_policy,
                            prune_steps=args.prune_steps, raw_dtype=args.raw_dtype, method=args.method)
    log = print if not args.json and sys.stdout.isatty() else say  # progress: stderr unless on a terminal
    report = compress_checkpoint(
        args.checkpoint, args.output, config, data_spec=args.data, report_dir=args.report_dir,
        tuning=tuning, log=log,
    )
    if args.json:
        result = report.to_dict()
        result["config"].setdefault("sparsity", config.sparsity_3x3)  # the key's older name, for scripts
        print_json({**result, "output": args.output, "report_dir": report.report_dir})
    else:
        print(format_compression_report(report))
        print(f"wrote {args.output}; report and weight plot in {report.report_dir}")
    return 0


def _run_calibrated(args) -> int:
    from squeezelab.cli.output import print_json, say
    from squeezelab.compress.run import compress_with_calibration
    from squeezelab.report.compression import format_compression_report

    if args.data is not None:
        raise SqueezelabError("--calib-data and --data: pick one (--calib-data compresses without labels)")
    config = CalibConfig(target_bytes=args.target_bytes, method=args.method, calibration_images=args.calib_images,
                         held_out_images=args.held_out_images, distill_epochs=args.distill_epochs, raw_dtype=args.raw_dtype,
                         sensitivity=args.sensitivity, sensitivity_images=args.sensitivity_images, seed=args.seed)
    log = print if not args.json and sys.stdout.isatty() else say
    report = compress_with_calibration(args.checkpoint, args.output, args.calib_data, config, report_dir=args.report_dir, log=log)
    if args.json:
        print_json({**report.to_dict(), "output": args.output, "report_dir": report.report_dir})
    else:
        print(format_compression_report(report))
        print(f"wrote {args.output}; report and weight plot in {report.report_dir}")
    return 0
