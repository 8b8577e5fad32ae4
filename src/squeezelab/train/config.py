"""How to train, as one typed config saved in every checkpoint. The recipe that fills the values a
run leaves unset is `train.recipe`'s. Plain data: no torch."""

from __future__ import annotations

import dataclasses

from squeezelab.errors import SqueezelabError
from squeezelab.utils.config import JsonConfig

SCHEDULES = ("cosine", "linear", "constant")
# How the values of a config were filled: by one of `train.recipe.RECIPES`, or all given by the
# caller ("given": compression's fine-tuning); "auto" until the recipe has been chosen.
RECIPE_NAMES = ("scratch", "small-images", "fine-tune", "given")


@dataclasses.dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """How to train. A value left None is the recipe's (`train.recipe.RECIPES`), chosen by
    `train.recipe.resolve` once the data is open: small images, photos from scratch, or fine-tuning. Weight decay (5e-4) is on
    conv weights only (not on biases or batch-norm parameters).

    lr is for `batch_size` x `accumulate` images a step; `accumulate` > 1 sums gradients over
    several batches (how the paper's batch 512 fits a small machine).
    """

    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None  # fine-tuning: chosen from the weights' input scale
    optimizer: str | None = None  # "sgd" (Nesterov) or "adamw"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float | None = None
    schedule: str | None = None  # "cosine", "linear" (decay to 0) or "constant" (after warm-up)
    label_smoothing: float | None = None
    translate: int | None = None  # random shift in pixels for small images (None: the data's, a side / 8)
    cutout: int | None = None  # side of the square cutout greys per training image of 64 px or less (0: none)
    whiten_stem: bool | None = None  # first conv from the training images' patch whitening (train.whiten), from scratch
    accumulate: int = 1
    seed: int = 0
    device: str = "auto"  # "auto": cuda when available, else cpu
    freeze_features: bool = False
    frozen_stages: int | None = None  # fine-tuning: the layers before the k-th max pool keep their weights (0: none)
    weights: str | None = None  # fine-tune from a torchvision state_dict or a squeezelab checkpoint
    stuck_steps: int = 300  # stop when the loss stays at ln(num_classes) this many steps (0: never)
    workers: int | None = None  # data-loading processes for folders of photos (None: one per core)
    pretrained_lr_factor: float | None = None  # lr x this for every layer but the classifier (the new head)
    recipe: str = "auto"  # how the values were filled (RECIPE_NAMES; "auto": not chosen yet)

    def __post_init__(self):
        unset = lambda value: value is None  # noqa: E731 - the recipe decides later
        checks = [
            (unset(self.epochs) or self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (unset(self.batch_size) or self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (unset(self.lr) or self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (unset(self.optimizer) or self.optimizer in ("sgd", "adamw"),
             f"--optimizer must be sgd or adamw, got {self.optimizer!r}"),
            (unset(self.schedule) or self.schedule in SCHEDULES,
             f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"),
            (self.accumulate >= 1, f"--accumulate must be >= 1, got {self.accumulate}"),
            (unset(self.label_smoothing) or 0 <= self.label_smoothing < 1,
             f"--label-smoothing must be in [0, 1), got {self.label_smoothing}"),
            (unset(self.translate) or self.translate >= 0, f"--translate must be >= 0, got {self.translate}"),
            (unset(self.frozen_stages) or self.frozen_stages >= 0,
             f"--frozen-stages must be >= 0, got {self.frozen_stages}"),
            (unset(self.cutout) or self.cutout >= 0, f"--cutout must be >= 0, got {self.cutout}"),
            (unset(self.pretrained_lr_factor) or 0 < self.pretrained_lr_factor <= 1,
             f"--pretrained-lr-factor must be in (0, 1], got {self.pretrained_lr_factor}"),
            (self.recipe == "auto" or self.recipe in RECIPE_NAMES, f"unknown recipe {self.recipe!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SqueezelabError(message)

    @classmethod
    def for_run(cls, weights: str | None = None, **given) -> "TrainConfig":
        """The config for a run from the values given (None: the recipe's, once the data is open).

        >>> TrainConfig.for_run("m.pt", epochs=3).weights
        'm.pt'
        """
        return cls(**{k: v for k, v in given.items() if v is not None}, weights=weights)

    @classmethod
    def given(cls, **values) -> "TrainConfig":
        """A config no recipe touches: SGD at a constant rate, no warm-up, no label smoothing, no
        guard, unless `values` say otherwise. What a benchmark timing the step, or a test, wants.

        >>> TrainConfig.given(batch_size=32, lr=0.01).recipe
        'given'
        """
        neutral = {"epochs": 1, "optimizer": "sgd", "warmup_epochs": 0.0, "schedule": "constant",
                   "label_smoothing": 0.0, "pretrained_lr_factor": 1.0, "stuck_steps": 0}
        return cls(**{**neutral, **values, "recipe": "given"})

    def resumed(self, epochs_done: int, epochs: int | None, **changes) -> "TrainConfig":
        """This recorded recipe for a run resumed after `epochs_done` epochs: `epochs`, when given,
        becomes the run's new total (more than it had extends it; the schedule is then recomputed
        over the new total from the step reached). A run with nothing left to train is refused:
        resuming must train at least one epoch.

        >>> TrainConfig(epochs=1).resumed(1, 3).epochs
        3
        """
        total = self.epochs if epochs is None else epochs
        if total < epochs_done:
            raise SqueezelabError(f"--resume --epochs {total}: the run has already trained {epochs_done} epochs; "
                                  f"pass more than {epochs_done} to extend it")
        if total == epochs_done:
            raise SqueezelabError(f"--resume: the run has trained all {epochs_done} epochs it was set for; pass "
                                  f"--epochs N with N > {epochs_done} to extend it, or start a new run in another --out")
        return dataclasses.replace(self, epochs=total, **changes)
