"""The training recipe as one typed config, saved in every checkpoint, and the rules that adjust it
to the run at hand (a resumed run's length, a batch larger than the data). Plain data: no torch."""

from __future__ import annotations

import dataclasses
import warnings

from squeezelab.errors import SqueezelabError, SqueezelabWarning
from squeezelab.utils.config import JsonConfig

DEFAULT_MODEL = "squeezenet1_1"  # the model that converges from scratch on small data (README, Training)

# Fine-tuning pretrained features on a few hundred photos: a short schedule, batches small enough
# for several steps an epoch, the new head at lr and the pretrained layers at a tenth of it (they
# already know their job). AdamW, because its steps do not grow with the features' scale: the
# Caffe-trained model's pooled features have norms in the hundreds, and an SGD step on a fresh
# head then overshoots to NaN (measured on the released model; bench/finetune.py).
# lr None: FINE_TUNE_LR over the weights' input scale (`train.transfer.recipe_lr`), resolved when the
# weights are opened and recorded as the number used.
FINE_TUNE_RECIPE = {"epochs": 6, "batch_size": 32, "optimizer": "adamw", "lr": None, "warmup_epochs": 0.5,
                    "pretrained_lr_factor": 0.1}
FINE_TUNE_LR = 5e-3  # AdamW's rate for the new head on inputs of torchvision's scale (bench/finetune.py)


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
    lr: float | None = 0.05  # None (fine-tuning): chosen from the weights' input scale
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
    pretrained_lr_factor: float = 1.0  # lr x this for every layer but the classifier (the new head)
    recipe: str = "scratch"  # "scratch" or "fine-tune": which defaults the unset values came from

    def __post_init__(self):
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr is None or self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.optimizer in ("sgd", "adamw"), f"--optimizer must be sgd or adamw, got {self.optimizer!r}"),
            (self.schedule in ("cosine", "constant"), f"--schedule must be cosine or constant, got {self.schedule!r}"),
            (self.accumulate >= 1, f"--accumulate must be >= 1, got {self.accumulate}"),
            (0 <= self.label_smoothing < 1, f"--label-smoothing must be in [0, 1), got {self.label_smoothing}"),
            (0 < self.pretrained_lr_factor <= 1,
             f"--pretrained-lr-factor must be in (0, 1], got {self.pretrained_lr_factor}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SqueezelabError(message)

    @classmethod
    def for_run(cls, weights: str | None = None, **given) -> "TrainConfig":
        """The recipe for a run: `FINE_TUNE_RECIPE` under the values given (not None) when starting
        from `weights`, the scratch defaults otherwise.

        >>> TrainConfig.for_run("m.pt", epochs=3).recipe, TrainConfig.for_run("m.pt", epochs=3).epochs
        ('fine-tune', 3)
        """
        given = {k: v for k, v in given.items() if v is not None}
        if not weights and given.get("lr", 1.0) is None:
            given.pop("lr")
        base = {**FINE_TUNE_RECIPE, "recipe": "fine-tune"} if weights else {}
        return cls(**{**base, **given, "weights": weights})

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
