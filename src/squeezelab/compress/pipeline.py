"""The Deep Compression pipeline: prune -> fine-tune -> quantize -> fine-tune -> encode (Han et al.,
2016, Figure 1), with an honest report: the accuracy after is measured on the model decoded from
the written bytes, not on the in-memory model.

Pruning is gradual, as the paper's iterative pruning (Section 2; Han et al., 2015, "Learning both
weights and connections", Section 3.3): `prune_steps` rounds, each removing more weights by
magnitude along the cubic schedule of Zhu & Gupta (2017) and then fine-tuning with the masks
held. Per layer, the `squeezenet` policy prunes the 3x3 expand layers (three quarters of the
weights) hardest and keeps the first conv, the classifier and the 1x1 layers denser, as the
released SqueezeNet model does (`compress.policy`). After every pruning round and after weight
sharing the batch-norm statistics are measured again (`compress.batchnorm`): the stale ones cost
more accuracy than the pruning itself. For the file, batch norm is folded to scale and shift and
stored, with the other unshared tensors, as float16, and the JSON header is deflated.

Fine-tuning, evaluation and recalibration are passed in as functions so the pipeline works with
any trainer; `squeezelab compress` passes `squeezelab.train.trainer.fine_tune`,
`squeezelab.evaluate.evaluate` and `recalibrate_batch_norm_` on the training split.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

from torch import nn

from squeezelab.compress.batchnorm import fold_batch_norm_
from squeezelab.compress.codec import LayerStats, decode, encode
from squeezelab.compress.config import CompressConfig, PruneConfig, QuantConfig
from squeezelab.compress.policy import gradual_densities, policy_densities
from squeezelab.compress.prune import overall_density, prune
from squeezelab.compress.quantize import quantize_
from squeezelab.compress.sequential import prune_sequentially_, share_sequentially_

FineTune = Callable[[nn.Module, int], None]  # (model, epochs): train in place
Evaluate = Callable[[nn.Module], float]  # model -> validation top-1 as a fraction
Calibrate = Callable[[nn.Module], None]  # model -> batch-norm statistics measured again, in place
Inputs = Callable[[], list]  # () -> a few batches of training images (tensors), for `method="gptq"`



@dataclasses.dataclass
class CompressReport:
    """Sizes in bytes, accuracies as fractions (None when no data was given)."""

    layers: list[LayerStats]
    original_bytes: int
    compressed_bytes: int
    acc_before: float | None
    acc_pruned: float | None
    acc_after: float | None
    seconds: float
    config: dict
    top1_agreement: float | None = None  # with the uncompressed model, on held-out images (compress --calib-data)
    held_out_images: int | None = None
    calibration_images: int | None = None
    layer_errors: dict | None = None  # {layer: {"setting_cost": ..., "output_error": ...}}, measured on calibration images


    @property
    def ratio(self) -> float:
        return self.original_bytes / max(1, self.compressed_bytes)

    def to_dict(self) -> dict:
        costs = self.layer_errors or {}
        layers = [
            {"name": s.name, "kind": s.kind, "elements": s.elements, "density": round(s.density, 4), "bits": s.bits, "bytes": s.bytes,
             **_cost(costs.get(s.name.removesuffix(".weight")))}
            for s in self.layers
        ]
        fields = dataclasses.asdict(self)
        fields.pop("layers")
        fields.pop("layer_errors")
        return {**fields, "ratio": round(self.ratio, 2), "layers": layers}


def _cost(cost: dict | None) -> dict:
    """A layer's measured costs as report keys, to 4 significant digits."""
    return {k: float(f"{v:.4g}") for k, v in (cost or {}).items()}


def fp32_bytes(model: nn.Module) -> int:
    """Size of the model's floating-point state dict at 4 bytes a value (the paper's baseline)."""
    return sum(t.numel() * 4 for t in model.state_dict().values() if t.is_floating_point())


def compress_model(
    model: nn.Module,
    config: CompressConfig = CompressConfig(),
    *,
    finetune: FineTune | None = None,
    evaluate: Evaluate | None = None,
    calibrate: Calibrate | None = None,
    inputs: Inputs | None = None,
    metadata: dict | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[bytes, CompressReport, nn.Module]:
    """Compress `model` in place; returns the .sqz bytes, the report and the decoded model.

    >>> from squeezelab import create_model
    >>> data, report, small = compress_model(create_model("squeezenet1_1", num_classes=10))
    >>> report.ratio > 30  # 3-bit, 3x3 layers 8% kept (no fine-tuning here, so no accuracy)
    True
    """
    start = time.perf_counter()
    original = fp32_bytes(model)
    acc_before = evaluate(model) if evaluate else None
    final = {**policy_densities(model, config.sparsity_3x3, config.layer_policy), **(config.densities or {})}
    compensate = config.method == "gptq" and inputs is not None
    for step in range(1, config.prune_steps + 1):
        densities = gradual_densities(final, step, config.prune_steps)
        if compensate:
            prune_sequentially_(model, inputs(), densities)
        else:
            prune(model, PruneConfig(sparsity=0.0, densities=densities))
        log(f"pruning round {step}/{config.prune_steps}: {overall_density(model):.1%} of the weights kept")
        _recover(model, config.finetune_epochs, finetune, calibrate)
    acc_pruned = evaluate(model) if evaluate else None
    log(f"sharing weights: {config.bits}-bit codebooks" + (f", {config.fc_bits}-bit classifier" if config.fc_bits else ""))
    quant = QuantConfig(bits=config.bits, fc_bits=config.fc_bits)
    if compensate:
        share_sequentially_(model, inputs(), {name: quant.bits_for(name) for name in final})
    else:
        quantize_(model, quant)
    _recover(model, config.finetune_epochs, finetune, calibrate)
    if config.fold_batch_norm:
        fold_batch_norm_(model)
    data, layers = encode(model, gap_bits=config.gap_bits, raw_dtype=config.raw_dtype, deflate_header=True,
                          metadata={"compress": config.to_dict(), **(metadata or {})})
    decoded = decode(data, "<compressed>")
    acc_after = evaluate(decoded) if evaluate else None
    report = CompressReport(layers, original, len(data), acc_before, acc_pruned, acc_after,
                            time.perf_counter() - start, config.to_dict())
    return data, report, decoded


def _recover(model: nn.Module, epochs: int, finetune: FineTune | None, calibrate: Calibrate | None) -> None:
    """After the weights changed: batch-norm statistics measured again (fine-tuning starts from
    a working model), fine-tuning, and the statistics measured once more for the final weights."""
    if calibrate:
        calibrate(model)
    if finetune and epochs:
        finetune(model, epochs)
        if calibrate:
            calibrate(model)
