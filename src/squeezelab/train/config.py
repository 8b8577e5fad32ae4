"""The training recipe as one typed config, saved in every checkpoint, and the rules that adjust it
to the run at hand (a resumed run's length, a batch larger than the data). Plain data: no torch."""

from __future__ import annotations

import dataclasses
import math
import warnings

from squeezelab.errors import SqueezelabError, SqueezelabWarning
from squeezelab.utils.config import JsonConfig

DEFAULT_MODEL = "squeezenet1_1"  # from scratch on images larger than SMALL_IMAGE_SIZE
SMALL_IMAGE_MODEL = "squeezenet_cifar"  # from scratch on images of SMALL_IMAGE_SIZE px or less
SMALL_IMAGE_SIZE = 64

# Each recipe fills the training values a run leaves unset (None); `TrainConfig.resolved` picks one
# from the data and the weights. lr is for the recipe's batch_size and scales with the batch when
# the batch differs (the linear scaling rule; SGD recipes only).
#
# Photos from scratch: SGD with Nesterov momentum, warm-up then cosine, label smoothing 0.1.
SCRATCH_RECIPE = {"epochs": 12, "batch_size": 64, "optimizer": "sgd", "lr": 0.05, "warmup_epochs": 1.0,
                  "schedule": "cosine", "label_smoothing": 0.1, "pretrained_lr_factor": 1.0}
# Small images (CIFAR-10, digits) from scratch, chosen for accuracy per CPU minute on the full
# CIFAR-10 (measured by bench/cifar10.py; docs/benchmarks.md): large batches at a high rate, a
# long linear warm-up and a linear decay to zero, label smoothing 0.2 and 2-px translations, as
# the fastest CIFAR-10 trainers use for short budgets, and the first conv started as the patch
# whitening of the training images (it won all three held-out comparisons, docs/training.md). The
# batch shrinks to keep >= 16 steps an epoch on small sets (digits: 64).
SMALL_IMAGE_RECIPE = {**SCRATCH_RECIPE, "epochs": 20, "batch_size": 512, "lr": 0.4, "warmup_epochs": 4.0,
                      "schedule": "linear", "label_smoothing": 0.2, "translate": 2, "whiten_stem": True}
MIN_STEPS_PER_EPOCH = 16
# Fine-tuning pretrained features on a few hundred photos: a short schedule, batches small enough
# for several steps an epoch, the new head at lr and the pretrained layers at a tenth of it (they
# already know their job). AdamW, because its steps do not grow with the features' scale: the
# Caffe-trained model's pooled features have norms in the hundreds, and an SGD step on a fresh
# head then overshoots to NaN (measured on the released model; bench/finetune.py).
# lr None: FINE_TUNE_LR over the weights' input scale (`train.transfer.recipe_lr`), resolved when the
# weights are opened and recorded as the number used.
FINE_TUNE_RECIPE = {**SCRATCH_RECIPE, "epochs": 6, "batch_size": 32, "optimizer": "adamw", "lr": None,
                    "warmup_epochs": 0.5, "pretrained_lr_factor": 0.1}
FINE_TUNE_LR = 5e-3  # AdamW's rate for the new head on inputs of torchvision's scale (bench/finetune.py)
SCHEDULES = ("cosine", "linear", "constant")
RECIPES = {"scratch": SCRATCH_RECIPE, "small-images": SMALL_IMAGE_RECIPE, "fine-tune": FINE_TUNE_RECIPE}


def recipe_name(image_size: int, weights: str | None = None) -> str:
    """Which recipe trains a run: fine-tune with weights, small-images at <= 64 px, scratch otherwise."""
    if weights:
        return "fine-tune"
    return "small-images" if image_size <= SMALL_IMAGE_SIZE else "scratch"


@dataclasses.dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """How to train. A value left None is the recipe's (RECIPES), chosen by `resolved` once the
    data is open: small images, photos from scratch, or fine-tuning. Weight decay (5e-4) is on
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
    weights: str | None = None  # fine-tune from a torchvision state_dict or a squeezelab checkpoint
    stuck_steps: int = 300  # stop when the loss stays at ln(num_classes) this many steps (0: never)
    workers: int | None = None  # data-loading processes for folders of photos (None: one per core)
    pretrained_lr_factor: float | None = None  # lr x this for every layer but the classifier (the new head)
    recipe: str = "auto"  # which RECIPES entry filled the unset values ("auto": not chosen yet)

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
            (unset(self.cutout) or self.cutout >= 0, f"--cutout must be >= 0, got {self.cutout}"),
            (unset(self.pretrained_lr_factor) or 0 < self.pretrained_lr_factor <= 1,
             f"--pretrained-lr-factor must be in (0, 1], got {self.pretrained_lr_factor}"),
            (self.recipe == "auto" or self.recipe in RECIPES, f"unknown recipe {self.recipe!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SqueezelabError(message)

    @classmethod
    def for_run(cls, weights: str | None = None, **given) -> "TrainConfig":
        """The config for a run from the values given (None: the recipe's, once the data is open).

        >>> TrainConfig.for_run("m.pt", epochs=3).resolved(224, 1000).recipe
        'fine-tune'
        """
        return cls(**{k: v for k, v in given.items() if v is not None}, weights=weights)

    def resolved(self, image_size: int, train_images: int) -> "TrainConfig":
        """Every unset value from the recipe for this data (`recipe_name`); a config already
        resolved (a resumed run's) comes back as it is. Left unset, the small-image recipe's
        batch shrinks to a power of two that keeps MIN_STEPS_PER_EPOCH steps an epoch, and an
        SGD recipe's lr scales with the batch.

        >>> c = TrainConfig().resolved(16, 1438)  # digits
        >>> c.recipe, c.batch_size, c.lr
        ('small-images', 64, 0.05)
        """
        if self.recipe != "auto":
            return self
        name = recipe_name(image_size, self.weights)
        recipe = RECIPES[name]
        values = {k: v for k, v in recipe.items() if getattr(self, k) is None}
        if "batch_size" in values and name == "small-images":
            fitting = 2 ** max(4, int(math.log2(max(1, train_images // MIN_STEPS_PER_EPOCH))))
            values["batch_size"] = min(recipe["batch_size"], fitting)
        batch = values.get("batch_size", self.batch_size)
        if "lr" in values and values["lr"] is not None and (self.optimizer or recipe["optimizer"]) == "sgd":
            values["lr"] = round(recipe["lr"] * batch / recipe["batch_size"], 6)
        return dataclasses.replace(self, **values, recipe=name)

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

    def fitted(self, train_images: int) -> "TrainConfig":
        """This recipe with a batch no larger than the training set (a warning says so): a batch of
        64 over 48 images would otherwise mean one padded step an epoch without a word."""
        if train_images < 1 or self.batch_size <= train_images:
            return self
        warnings.warn(f"--batch-size {self.batch_size} is larger than the {train_images} training images; using "
                      f"{train_images} (one step an epoch: a smaller --batch-size takes more steps)",
                      SqueezelabWarning, stacklevel=2)
        return dataclasses.replace(self, batch_size=train_images)
