"""The training recipe as one typed config, saved in every checkpoint."""

from __future__ import annotations

import dataclasses

from squeezelab.errors import SqueezelabError
from squeezelab.utils.config import JsonConfig


@dataclasses.dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """How to train. The defaults are the recipe that converges on digits from scratch (docs/training.md):
    SGD with Nesterov momentum, linear warm-up then cosine decay, label smoothing 0.1,
    weight decay 5e-4 on conv weights only (not on biases or batch-norm parameters).

    lr is for `batch_size` x `accumulate` images a step; `accumulate` > 1 sums gradients over
    several batches (how the paper's batch 512 fits a small machine).
    """

    epochs: int = 12
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"  # "sgd" (Nesterov) or "adamw"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    schedule: str = "cosine"  # "cosine" or "constant" (after warm-up)
    label_smoothing: float = 0.1
    accumulate: int = 1
    seed: int = 0
    device: str = "auto"  # "auto": cuda when available, else cpu
    freeze_features: bool = False
    weights: str | None = None  # fine-tune from a torchvision state_dict or a squeezelab checkpoint
    stuck_steps: int = 300  # stop when the loss stays at ln(num_classes) this many steps (0: never)
    workers: int | None = None  # data-loading processes for folders of photos (None: one per core)

    def __post_init__(self):
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.optimizer in ("sgd", "adamw"), f"--optimizer must be sgd or adamw, got {self.optimizer!r}"),
            (self.schedule in ("cosine", "constant"), f"--schedule must be cosine or constant, got {self.schedule!r}"),
            (self.accumulate >= 1, f"--accumulate must be >= 1, got {self.accumulate}"),
            (0 <= self.label_smoothing < 1, f"--label-smoothing must be in [0, 1), got {self.label_smoothing}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SqueezelabError(message)


