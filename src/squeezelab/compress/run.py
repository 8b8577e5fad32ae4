"""`squeezelab compress CKPT -o OUT.sqz`: a trained checkpoint in, a .sqz file and a report out.

Fine-tunes with the project's trainer on the checkpoint's own training data (SGD with Nesterov
momentum, weight decay 5e-4 and label smoothing 0.1 as `squeezelab train`, warm-up then cosine in
each round), re-measures batch-norm statistics on training batches, and measures accuracy on the
validation split recorded in the checkpoint (or on `--data`), so the before/after figures compare
like with like.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from squeezelab.compress.config import CompressConfig
from squeezelab.compress.pipeline import CompressReport, compress_model
from squeezelab.errors import SqueezelabError
from squeezelab.report.compression import format_compression_report
from squeezelab.report.plots import plot_weight_distribution
from squeezelab.utils.atomic import atomic_write_bytes, atomic_write_text


def compress_checkpoint(
    checkpoint_path: str | os.PathLike,
    out: str | os.PathLike,
    config: CompressConfig = CompressConfig(),
    *,
    data_spec: str | None = None,
    report_dir: str | os.PathLike | None = None,
    lr: float = 0.02,
    centroid_lr: float = 0.005,
    batch_size: int = 64,
    log: Callable[[str], None] = lambda message: None,
) -> CompressReport:
    """Compress a checkpoint into `out` (.sqz) and write report.json / report.txt / weights.png
    into `report_dir` (default: `<out stem>_report` beside the file).

    `lr` is the peak learning rate of the fine-tuning after each pruning round, `centroid_lr` the
    one after weight sharing (each centroid's gradient sums over all its weights, so it is small).
    """
    from squeezelab.compress.batchnorm import recalibrate_batch_norm_
    from squeezelab.compress.codec import plain_state_dict
    from squeezelab.compress.quantize import shared_layers
    from squeezelab.data.datasets import open_recorded_dataset
    from squeezelab.evaluate import evaluate
    from squeezelab.train.checkpoint import load_checkpoint, model_from_checkpoint
    from squeezelab.train.run import fine_tune

    out = Path(out)
    if out.suffix != ".sqz":
        raise SqueezelabError(f"the output {out} must end in .sqz")
    checkpoint = load_checkpoint(checkpoint_path)
    model = model_from_checkpoint(checkpoint)
    data = open_recorded_dataset(checkpoint.get("data"), data_spec, classes=model.record.classes,
                                 preprocessing=model.record.preprocessing, where=str(checkpoint_path))
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def finetune(m, epochs):
        shared = bool(shared_layers(m))
        fine_tune(m, data, epochs, lr=centroid_lr if shared else lr, batch_size=batch_size, optimizer="sgd",
                  weight_decay=5e-4, label_smoothing=0.1, log=log)

    def accuracy(m) -> float:
        return evaluate(m, data).top1

    def calibrate(m) -> None:
        recalibrate_batch_norm_(m, data.batches("train", batch_size, train=False), num_batches=50)

    blob, report, decoded = compress_model(
        model, config, finetune=finetune, evaluate=accuracy, calibrate=calibrate, log=log,
        metadata={"data": data.config.to_dict(), "source": str(checkpoint_path)},
    )
    atomic_write_bytes(out, blob)
    report_dir = Path(report_dir) if report_dir else out.with_name(f"{out.stem}_report")
    report_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report_dir / "report.json", json.dumps(report.to_dict(), indent=2))
    atomic_write_text(report_dir / "report.txt", format_compression_report(report) + "\n")
    plot_weight_distribution(before, plain_state_dict(decoded), report_dir / "weights.png")
    report.report_dir = str(report_dir)
    return report
