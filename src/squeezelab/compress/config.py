"""What to compress and how much, as plain data: every config here round-trips through JSON.

Which layers a step touches is not part of a config but an argument of the function that runs it
(`prune(model, config, filter_fn=...)`), so a config can be saved in a .sqz header or a report and
read back. Importing this module needs no torch: the command line reads its defaults from here.
"""

from __future__ import annotations

import dataclasses

from squeezelab.errors import SqueezelabError
from squeezelab.utils.config import JsonConfig

MIN_BITS, MAX_BITS = 1, 8
DEFAULT_GAP_BITS = 4  # the released SqueezeNet Deep Compression model uses 4-bit index gaps
RAW_FLOAT_DTYPES = ("float32", "float16")  # what the codec may store unshared floats as
LAYER_POLICIES = ("squeezenet", "uniform")
METHODS = ("gptq", "kmeans")  # error-compensating (compress.gptq), or magnitude pruning + plain k-means
PRUNE_SCOPES = ("layer", "global")


@dataclasses.dataclass(frozen=True)
class PruneConfig(JsonConfig):
    """How much to prune: `sparsity` (fraction removed) of every selected layer, or a per-layer
    `densities` table {module name: fraction kept} that overrides it for the layers it names.

    `scope="global"` ranks all selected weights together by magnitude instead (one threshold).

    >>> PruneConfig.from_dict(PruneConfig(0.5, {"classifier.1": 0.2}).to_dict())
    PruneConfig(sparsity=0.5, densities={'classifier.1': 0.2}, scope='layer')
    """

    sparsity: float = 0.67
    densities: dict[str, float] | None = None
    scope: str = "layer"

    def __post_init__(self):
        if not 0.0 <= self.sparsity < 1.0:
            raise SqueezelabError(f"sparsity must be in [0, 1), got {self.sparsity}; 0.67 keeps a third as the paper")
        if self.scope not in PRUNE_SCOPES:
            raise SqueezelabError(f"prune scope must be 'layer' or 'global', got {self.scope!r}")
        for name, density in (self.densities or {}).items():
            if not 0.0 < density <= 1.0:
                raise SqueezelabError(f"density for {name} must be in (0, 1], got {density}")


@dataclasses.dataclass(frozen=True)
class QuantConfig(JsonConfig):
    """Bits per shared weight: `bits` for every layer, `fc_bits` for the classifier (the paper
    used 8 bits for conv and 5 for fc layers in AlexNet), `layer_bits` {module name: bits} to
    override single layers. `iterations` bounds k-means."""

    bits: int = 8
    fc_bits: int | None = None
    layer_bits: dict[str, int] | None = None
    iterations: int = 30

    def __post_init__(self):
        for label, b in [("bits", self.bits), ("fc_bits", self.fc_bits), *(self.layer_bits or {}).items()]:
            if b is not None and not MIN_BITS <= b <= MAX_BITS:
                raise SqueezelabError(f"{label} must be between {MIN_BITS} and {MAX_BITS}, got {b}; the paper used 8 and 6")

    def bits_for(self, name: str) -> int:
        if self.layer_bits and name in self.layer_bits:
            return self.layer_bits[name]
        if self.fc_bits is not None and name.startswith("classifier"):
            return self.fc_bits
        return self.bits


@dataclasses.dataclass(frozen=True)
class ChannelPruneConfig(JsonConfig):
    """Remove `squeeze_amount` of each Fire's squeeze channels and `expand_amount` of its expand
    channels, the ones least important (`prune_channels(..., importance=...)`, L1 norm by default)."""

    squeeze_amount: float = 0.25
    expand_amount: float = 0.0

    def __post_init__(self):
        for label, value in (("squeeze_amount", self.squeeze_amount), ("expand_amount", self.expand_amount)):
            if not 0.0 <= value < 1.0:
                raise SqueezelabError(f"{label} must be in [0, 1), got {value}")


@dataclasses.dataclass(frozen=True)
class CompressConfig(JsonConfig):
    """Settings of one compression run (`squeezelab compress`).

    `sparsity_3x3` is the fraction of weights removed from the 3x3 expand layers, which hold
    three quarters of SqueezeNet's weights. The `layer_policy` says what the other layers lose:
    `squeezenet` keeps the first conv, the 1x1 layers and the classifier denser (see
    `compress.pipeline.policy_densities`), `uniform` removes the same fraction from every layer.
    `densities` overrides single layers. `finetune_epochs` run after each of the `prune_steps`
    pruning rounds and once after weight sharing. `raw_dtype` stores the unshared tensors (batch
    norm, biases); `fold_batch_norm` stores batch norm as scale and shift. `method` "gptq" chooses
    the pruned weights and the shared values with error compensation on training inputs
    (`compress.gptq`); "kmeans" prunes by magnitude and shares by plain k-means.

    >>> CompressConfig.from_dict(CompressConfig(sparsity_3x3=0.8).to_dict()).sparsity_3x3
    0.8
    >>> CompressConfig.from_dict({"sparsity": 0.7}).sparsity_3x3  # as .sqz headers before the rename
    0.7
    """

    sparsity_3x3: float = 0.92
    bits: int = 3
    fc_bits: int | None = None
    densities: dict[str, float] | None = None
    finetune_epochs: int = 3
    gap_bits: int = DEFAULT_GAP_BITS
    layer_policy: str = "squeezenet"
    prune_steps: int = 4
    raw_dtype: str = "float16"
    fold_batch_norm: bool = True
    method: str = "gptq"

    def __post_init__(self):
        if self.method not in METHODS:
            raise SqueezelabError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.finetune_epochs < 0:
            raise SqueezelabError(f"--finetune-epochs must be >= 0, got {self.finetune_epochs}")
        if not 1 <= self.prune_steps <= 100:
            raise SqueezelabError(f"--prune-steps must be between 1 and 100, got {self.prune_steps}")
        if self.layer_policy not in LAYER_POLICIES:
            raise SqueezelabError(f"--layer-policy must be one of {', '.join(LAYER_POLICIES)}, got {self.layer_policy!r}")
        if self.raw_dtype not in RAW_FLOAT_DTYPES:
            raise SqueezelabError(f"raw_dtype must be 'float32' or 'float16', got {self.raw_dtype!r}")
        if not 0.0 <= self.sparsity_3x3 < 1.0:
            raise SqueezelabError(f"--sparsity must be in [0, 1), got {self.sparsity_3x3}; 0.92 keeps 8% of the 3x3 weights")
        PruneConfig(sparsity=self.sparsity_3x3, densities=self.densities)  # validates the table
        QuantConfig(bits=self.bits, fc_bits=self.fc_bits)

    @classmethod
    def from_dict(cls, data: dict) -> CompressConfig:
        if "sparsity" in data and "sparsity_3x3" not in data:  # the field's older name
            data = {**data, "sparsity_3x3": data["sparsity"]}
        return super().from_dict(data)


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(JsonConfig):
    """How `squeezelab compress` fine-tunes on the checkpoint's own training data (SGD with Nesterov
    momentum, as `squeezelab train`): `lr` is the peak rate after each pruning round, `centroid_lr`
    the one after weight sharing (each centroid's gradient sums over all its weights, so it is
    small); batch-norm statistics are measured again on `calibration_batches` training batches, and
    `method="gptq"` measures each layer's input statistics on `compensation_batches` of them.

    >>> FinetuneConfig.from_dict(FinetuneConfig(lr=0.01).to_dict()).lr
    0.01
    """

    lr: float = 0.02
    centroid_lr: float = 0.005
    batch_size: int = 64
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    calibration_batches: int = 50
    compensation_batches: int = 8
    seed: int = 0  # the order of the fine-tuning and calibration batches
    amp: str = "auto"  # the fine-tuning's precision (runtime.training_precision); accuracies are measured in fp32

    def __post_init__(self):
        for label, value in (("--lr", self.lr), ("--centroid-lr", self.centroid_lr), ("--batch-size", self.batch_size),
                             ("calibration_batches", self.calibration_batches),
                             ("compensation_batches", self.compensation_batches)):
            if not value > 0:
                raise SqueezelabError(f"{label} must be > 0, got {value}")
        if self.weight_decay < 0 or not 0.0 <= self.label_smoothing < 1.0:
            raise SqueezelabError(f"weight_decay must be >= 0 and label_smoothing in [0, 1), got "
                                  f"{self.weight_decay} and {self.label_smoothing}")


SENSITIVITIES = ("network", "layer")


@dataclasses.dataclass(frozen=True)
class CalibConfig(JsonConfig):
    """Settings of compression from unlabelled images (`compress.datafree`, `compress --calib-data`).
    `target_bytes` is the whole .sqz file; None: three quarters of the model's size at 8 bits with
    its current sparsity. `method` "gptq" prunes and shares each layer with error compensation on
    the calibration images' statistics, sequentially (`compress.gptq`, `compress.sequential`);
    "kmeans" prunes by magnitude and shares by plain k-means.

    >>> CalibConfig.from_dict(CalibConfig(target_bytes=450_000).to_dict()).target_bytes
    450000
    """

    target_bytes: int | None = None
    method: str = "gptq"
    calibration_images: int = 128
    held_out_images: int = 1000
    sensitivity_images: int = 16
    sensitivity: str = "network"  # "network": KL of the model's output per layer setting; "layer": the layer's own output
    distill_epochs: int = 2
    raw_dtype: str = "float16"
    seed: int = 0

    def __post_init__(self):
        if self.sensitivity not in SENSITIVITIES:
            raise SqueezelabError(f"--sensitivity must be network or layer, got {self.sensitivity!r}")
        if self.method not in METHODS:
            raise SqueezelabError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.raw_dtype not in RAW_FLOAT_DTYPES:
            raise SqueezelabError(f"raw_dtype must be 'float32' or 'float16', got {self.raw_dtype!r}")
        for label, value, low in (("--calib-images", self.calibration_images, 1), ("--held-out-images", self.held_out_images, 1),
                                  ("--sensitivity-images", self.sensitivity_images, 1),
                                  ("--distill-epochs", self.distill_epochs, 0), ("--target-bytes", self.target_bytes or 1, 1)):
            if value < low:
                raise SqueezelabError(f"{label} must be >= {low}, got {value}")
