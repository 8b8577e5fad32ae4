"""Deep Compression of a CIFAR-10 SqueezeNet: the paper's Table 2 columns, on real images.

For each setting, `squeezelab compress` (its pipeline: gradual pruning with fine-tuning, weight
sharing, fine-tuning of the shared weights, Huffman-coded .sqz) compresses the checkpoint,
fine-tuning on DATA/train/ (the validation split it reports on is held out of train/), then the
.sqz file is decoded and scored on all of DATA/test/, as is the uncompressed checkpoint:

    fp32 bytes    the checkpoint's state dict as float32
    sqz bytes     the .sqz file on disk; ratio = fp32 / sqz
    top-1         on the test images, before (checkpoint) and after (the decoded .sqz)

Settings: `default` is `squeezelab compress` with no options; `paper-8bit` and `paper-6bit` are
the paper's (a third of the weights kept in every layer, 8-bit and 6-bit shared weights);
`paper-8bit-no-finetune` the paper's 8-bit setting without any fine-tuning; `share-8bit` and
`share-5bit` weight sharing and Huffman coding alone (nothing pruned, no fine-tuning). Each
finished setting is written to OUT/points/SETTING-seed0.json, so a rerun only compresses what is
missing; bench/results_tables.py builds the table of every setting there.

    python bench/cifar10.py --json --seed 1 --save cifar10-seed1.pt        # the model (about 55 min)
    python bench/cifar10_compress.py cifar10-seed1.pt --data "$(python bench/cifar10.py --prepare 1000)" \\
        --out docs/results/deep-compression
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

SETTINGS = {
    "default": {},
    "paper-8bit": {"layer_policy": "uniform", "sparsity_3x3": 0.67, "bits": 8},
    "paper-6bit": {"layer_policy": "uniform", "sparsity_3x3": 0.67, "bits": 6},
    # the paper's 8-bit setting with no fine-tuning at all: what pruning and sharing alone cost
    "paper-8bit-no-finetune": {"layer_policy": "uniform", "sparsity_3x3": 0.67, "bits": 8, "finetune_epochs": 0},
    # weight sharing and Huffman coding alone (nothing pruned, no fine-tuning)
    "share-8bit": {"layer_policy": "uniform", "sparsity_3x3": 0.0, "bits": 8, "finetune_epochs": 0},
    "share-5bit": {"layer_policy": "uniform", "sparsity_3x3": 0.0, "bits": 5, "finetune_epochs": 0},
}


def options_of(setting: str, finetune_epochs: int | None) -> dict:
    """A setting's CompressConfig options, with `finetune_epochs` for the settings that fine-tune."""
    options = SETTINGS[setting]
    if finetune_epochs is None or options.get("finetune_epochs") == 0:
        return options
    return {**options, "finetune_epochs": finetune_epochs}


def compress_one(checkpoint: str, data: str, setting: str, options: dict, threads: int) -> dict:
    import torch

    from squeezelab.compress.config import CompressConfig
    from squeezelab.compress.run import compress_checkpoint
    from squeezelab.evaluate.files import evaluate_file

    torch.set_num_threads(threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        sqz = Path(tmp) / f"{setting}.sqz"
        report = compress_checkpoint(checkpoint, sqz, CompressConfig(**options), data_spec=data,
                                     report_dir=Path(tmp) / "report", log=print)
        test = str(Path(data) / "test")
        before = evaluate_file(checkpoint, test, threads=threads)
        after = evaluate_file(sqz, test, threads=threads)
        sqz_bytes = sqz.stat().st_size
    return {
        "setting": setting, "options": options, "fp32_bytes": report.original_bytes,
        "sqz_bytes": sqz_bytes, "ratio": round(report.original_bytes / sqz_bytes, 2),
        "top1_before": before["top1"], "top1_after": after["top1"],
        "points_lost": round(100 * (before["top1"] - after["top1"]), 2), "test_images": after["count"],
        "val_top1_before": report.acc_before, "val_top1_after": report.acc_after,
        "minutes": round((time.perf_counter() - started) / 60, 2), "load": [round(x, 2) for x in os.getloadavg()],
        "checkpoint": str(checkpoint), "data": data,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a CIFAR-10 model (.pt), e.g. from bench/cifar10.py --save")
    parser.add_argument("--data", required=True, help="a folder with train/ (fine-tuning) and test/ (scoring)")
    parser.add_argument("--out", required=True, help="one result file per setting goes here (points/)")
    parser.add_argument("--settings", default="default,paper-8bit,paper-6bit",
                        help=f"comma-separated, from {', '.join(SETTINGS)} (default: the first three)")
    parser.add_argument("--finetune-epochs", type=int, default=None, metavar="N",
                        help="epochs after each pruning round and after sharing, for the settings that fine-tune "
                             "(default: compress's 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true", help="end with the rows as one JSON line")
    args = parser.parse_args()

    from results_tables import compression_table  # this folder, on the path of a script run from it

    from squeezelab.analysis.store import check_recipe, read_unit, write_unit
    from squeezelab.errors import SqueezelabError

    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown setting {unknown[0]!r}: choose from {', '.join(SETTINGS)}")
    if not (Path(args.data) / "train").is_dir() or not (Path(args.data) / "test").is_dir():
        raise SystemExit(f"{args.data} needs train/ and test/ sub-folders (see bench/cifar10.py --prepare)")
    out = Path(args.out)
    rows = []
    try:
        check_recipe(out, {"checkpoint": Path(args.checkpoint).name, "data": str(args.data)})  # one model, one data set
        for setting in settings:
            options = options_of(setting, args.finetune_epochs)
            row = read_unit(out, setting, 0)
            if row is not None and row["options"] != options:
                raise SqueezelabError(f"{out} holds a {setting} row made with other options ({row['options']}); "
                                      "delete its file in points/ to compress it again")
            if row is None:
                print(f"compressing with {setting}: {options or 'the defaults'}", flush=True)
                row = write_unit(out, setting, 0, compress_one(args.checkpoint, args.data, setting, options,
                                                               args.threads))
            rows.append(row)
    except SqueezelabError as exc:
        raise SystemExit(f"cifar10_compress: {exc}") from None
    print(compression_table(rows))  # bench/results_tables.py rebuilds it from every row in OUT
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
