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

from squeezelab.compress.config import CalibConfig, CompressConfig, FinetuneConfig
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
    tuning: FinetuneConfig = FinetuneConfig(),
    log: Callable[[str], None] = lambda message: None,
) -> CompressReport:
    """Compress a checkpoint into `out` (.sqz) and write report.json / report.txt / weights.png
    into `report_dir` (default: `<out stem>_report` beside the file).

    `tuning` says how it fine-tunes after each pruning round and after weight sharing.

    >>> compress_checkpoint("best.pt", "m.sqz", CompressConfig(sparsity_3x3=0.9))  # doctest: +SKIP
    """
    from squeezelab.compress.batchnorm import recalibrate_batch_norm_
    from squeezelab.compress.codec import plain_state_dict
    from squeezelab.compress.quantize import shared_layers
    from squeezelab.data.datasets import open_recorded_dataset
    from squeezelab.evaluate import evaluate
    from squeezelab.train.checkpoint import load_checkpoint, model_from_checkpoint
    from squeezelab.runtime import SpeedConfig
    from squeezelab.train.trainer import fine_tune

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
        fine_tune(m, data, epochs, lr=tuning.centroid_lr if shared else tuning.lr, batch_size=tuning.batch_size,
                  optimizer="sgd", weight_decay=tuning.weight_decay, label_smoothing=tuning.label_smoothing,
                  seed=tuning.seed, speed=SpeedConfig(amp=tuning.amp), log=log)

    def accuracy(m) -> float:
        return evaluate(m, data).top1

    def calibrate(m) -> None:
        # shuffled: the first 50 batches of a folder in file order would hold only its first classes
        recalibrate_batch_norm_(m, data.batches("train", tuning.batch_size, train=False, shuffle=True, seed=tuning.seed),
                                num_batches=tuning.calibration_batches)

    def inputs() -> list:
        # shuffled, for the same reason; the same draw for every layer and round
        found = []
        for images, _labels in data.batches("train", tuning.batch_size, train=False, shuffle=True, seed=tuning.seed):
            found.append(images)
            if len(found) >= tuning.compensation_batches:
                break
        return found

    blob, report, decoded = compress_model(
        model, config, finetune=finetune, evaluate=accuracy, calibrate=calibrate, inputs=inputs, log=log,
        metadata={"data": data.config.to_dict(), "source": str(checkpoint_path)},
    )
    _write(out, blob, report, before, plain_state_dict(decoded), report_dir)
    return report


def _write(out: Path, blob: bytes, report: CompressReport, before: dict, after: dict, report_dir) -> None:
    """The .sqz file, and report.json / report.txt / weights.png beside it."""
    atomic_write_bytes(out, blob)
    report_dir = Path(report_dir) if report_dir else out.with_name(f"{out.stem}_report")
    report_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report_dir / "report.json", json.dumps(report.to_dict(), indent=2))
    atomic_write_text(report_dir / "report.txt", format_compression_report(report) + "\n")
    plot_weight_distribution(before, after, report_dir / "weights.png")
    report.report_dir = str(report_dir)


def compress_with_calibration(checkpoint_path: str | os.PathLike, out: str | os.PathLike, calib_data: str | os.PathLike,
                              config: CalibConfig = CalibConfig(), *, report_dir: str | os.PathLike | None = None,
                              log: Callable[[str], None] = lambda message: None) -> CompressReport:
    """Compress a checkpoint into `out` (.sqz) with only unlabelled images (`compress.datafree`):
    per-layer densities and bits from each layer's sensitivity, codebooks refined to match the
    uncompressed model; `top1_agreement` with it is measured on held-out images (accuracies are
    None: there are no labels).

    >>> compress_with_calibration("m.pt", "m.sqz", "photos/", CalibConfig(target_bytes=450_000))  # doctest: +SKIP
    """
    import time

    from squeezelab.compress import datafree
    from squeezelab.compress.codec import decode, plain_state_dict
    from squeezelab.compress.pipeline import fp32_bytes
    from squeezelab.models.registry import model_of_weights
    from squeezelab.train.checkpoint import load_checkpoint, model_from_checkpoint

    start = time.perf_counter()
    out = Path(out)
    if out.suffix != ".sqz":
        raise SqueezelabError(f"the output {out} must end in .sqz")
    teacher = model_of_weights(checkpoint_path) or model_from_checkpoint(load_checkpoint(checkpoint_path))
    prep = teacher.record.preprocessing
    calib_paths, held_paths = datafree.split_images(calib_data, config.calibration_images, config.held_out_images, config.seed)
    log(f"{len(calib_paths)} calibration and {len(held_paths)} held-out images from {calib_data}")
    calib, held = datafree.load_images(calib_paths, prep), datafree.load_images(held_paths, prep)
    calib_logits, held_logits = datafree.logits(teacher, calib, prep), datafree.logits(teacher, held, prep)
    if config.method == "gptq":
        student, target, costs = _fit_compensated(teacher, calib, calib_logits, prep, config, log)
    else:
        student, target, costs = _fit_kmeans(teacher, calib, calib_logits, prep, config, log)
    aside = len(calib) // 4  # refinement is kept only if it helps calibration images it did not train on
    datafree.distill_(student, calib[aside:], calib_logits[aside:], prep, epochs=config.distill_epochs, seed=config.seed,
                      check=(calib[:aside], calib_logits[:aside]) if aside else None, log=log)
    blob, stats = _encode(student, config, calib_data, checkpoint_path)
    decoded = decode(blob, str(out))
    agreement = datafree.top1_agreement(datafree.logits(decoded, held, prep), held_logits)
    log(f"{len(blob):,} bytes; top-1 agreement with the uncompressed model on {len(held)} held-out images {agreement:.2%}")
    report = CompressReport(stats, fp32_bytes(teacher), len(blob), None, None, None, time.perf_counter() - start,
                            {**config.to_dict(), "target_bytes": target, "calib_data": str(calib_data)},
                            top1_agreement=agreement, held_out_images=len(held), calibration_images=len(calib),
                            layer_errors=costs)
    _write(out, blob, report, teacher.state_dict(), plain_state_dict(decoded), report_dir)
    return report


def _fit_kmeans(teacher, calib, calib_logits, prep, config: CalibConfig, log) -> tuple:
    """Magnitude pruning and plain k-means, each layer's setting by its measured sensitivity."""
    from squeezelab.compress import datafree

    if config.sensitivity == "network":
        n = config.sensitivity_images
        options = datafree.network_options(teacher, calib[:n], calib_logits[:n], prep)
    else:
        inputs = datafree.layer_inputs(teacher, prep.normalize(calib[: config.sensitivity_images]))
        options = datafree.layer_options(teacher, inputs)
        del inputs
    target = config.target_bytes or _default_target(options)
    student, _blob, chosen = _fit(teacher, options, target, config, log)
    return student, target, {name: {"setting_cost": option.error} for name, option in chosen.items()}


def _fit_compensated(teacher, calib, calib_logits, prep, config: CalibConfig, log) -> tuple:
    """Each layer's setting chosen by its compensated error (`compress.gptq`) on the uncompressed
    model's calibration statistics, then applied layer by layer on the compressed model's inputs
    (`compress.sequential`); if the file then overshoots the target, the layers' budget shrinks."""
    import copy

    from squeezelab.compress import datafree, sequential

    batches = [prep.normalize(calib[i:i + 16]) for i in range(0, len(calib), 16)]
    moments = sequential.model_moments(teacher, batches)
    options, found = sequential.layer_options(teacher, moments, datafree.DENSITY_FACTORS, datafree.BIT_CHOICES, log=log)
    if config.sensitivity == "network":
        n = config.sensitivity_images
        options = _network_scaled(teacher, options, found, calib[:n], calib_logits[:n], prep)
    target = config.target_bytes or _default_target(options)

    def apply(student, chosen):
        sequential.apply_shared_(student, chosen, found)

    _student, _blob, chosen = _fit(teacher, options, target, config, log, apply=apply)
    budget = sum(o.bytes for o in chosen.values())
    for _ in range(3):
        student = copy.deepcopy(teacher)
        errors = sequential.compress_sequentially_(student, batches, chosen, log=log)
        blob, _ = _encode(student, config, "", "")
        log(f"layer by layer on the compressed model's inputs: file {len(blob):,} bytes")
        if len(blob) <= target:
            return student, target, {name: {"setting_cost": chosen[name].error, "output_error": errors[name]}
                                     for name in chosen}
        budget -= len(blob) - target + 512
        chosen = datafree.allocate(options, budget)
    raise SqueezelabError(f"--target-bytes {target}: the compressed model is {len(blob):,} bytes; allow more bytes")


def _network_scaled(teacher, options: dict, found: dict, images, teacher_logits, prep) -> dict:
    """Options whose error is the layer's output error times how much the whole model's output
    moves per unit of it (one probe setting per layer, `_probe`: the KL divergence of the model's
    softmax with only that layer compressed, over the layer's own error for that setting). Both
    grow with the square of a small change, so their ratio holds across the settings."""
    import dataclasses

    import torch
    from torch import nn

    from squeezelab.compress import datafree
    from squeezelab.compress.prune import selected_layers

    targets = teacher_logits.log_softmax(1)
    batch = prep.normalize(images)
    scaled = {}
    with torch.no_grad():
        for name, module in selected_layers(teacher).items():
            probe = _probe(options[name])
            original = module.weight.detach().clone()
            module.weight.copy_(found[(name, probe.density_factor, probe.bits)].weight(original.shape))
            out = teacher.eval()(batch).log_softmax(1)
            module.weight.copy_(original)
            kl = float(nn.functional.kl_div(out, targets, log_target=True, reduction="batchmean"))
            scale = max(kl, 0.0) / max(probe.error, 1e-12)
            scaled[name] = [dataclasses.replace(o, error=o.error * scale) for o in options[name]]
    return scaled


def _probe(found: list) -> object:
    """The setting whose network effect calibrates a layer's scale: all kept weights at 5 bits, a
    change the model notices but well short of where its output saturates."""
    return min(found, key=lambda o: (abs(o.density_factor - 1.0), abs(o.bits - 5)))


def _default_target(options) -> int:
    widest = sum(max(o.bytes for o in found) for found in options.values())
    return int(widest * 0.75)


def _fit(teacher, options, target: int, config: CalibConfig, log, apply=None) -> tuple:
    """The teacher pruned and shared by the allocation whose whole file fits `target` bytes: the
    layers' budget starts at the target less the rest of the file and shrinks by any overshoot.
    Returns (student, file bytes, {layer: Option})."""
    import copy

    from squeezelab.compress import datafree

    apply = apply or datafree.apply_allocation_
    budget = target - _other_bytes(teacher, config)
    for _ in range(6):
        chosen = datafree.allocate(options, budget)
        student = copy.deepcopy(teacher)
        apply(student, chosen)
        blob, _ = _encode(student, config, "", "")
        bits = sorted({o.bits for o in chosen.values()})
        log(f"allocation for {budget:,} layer bytes: bits {bits}, file {len(blob):,} bytes")
        if len(blob) <= target:
            return student, blob, chosen
        budget -= len(blob) - target + 512
    raise SqueezelabError(f"--target-bytes {target}: the smallest allocation tried is {len(blob):,} bytes; "
                          "allow more bytes")


def _other_bytes(model, config: CalibConfig) -> int:
    """Bytes of the file besides the shared layers' streams: biases and other raw tensors, header."""
    per_value = 2 if config.raw_dtype == "float16" else 4
    from squeezelab.compress.prune import selected_layers

    weights = {f"{name}.weight" for name in selected_layers(model)}
    raw = sum(t.numel() for k, t in model.state_dict().items() if k not in weights and t.is_floating_point())
    return raw * per_value + 4096


def _encode(model, config: CalibConfig, calib_data, source) -> tuple[bytes, list]:
    from squeezelab.compress.codec import encode

    return encode(model, raw_dtype=config.raw_dtype, deflate_header=True,
                  metadata={"compress": {"calibration": config.to_dict()}, "calib_data": str(calib_data),
                            "source": str(source)})
