"""The training recipe: from the data's facts, the user's options and the pretrained weights to the
resolved training config, model config and augmentation. A recipe change goes here and nowhere else.

Three recipes fill the values a run leaves unset (None): small images (CIFAR-10, digits) from
scratch, photos from scratch, and fine-tuning pretrained weights. `plan` is the one entry point;
it reads no files and touches no tensors, so every rule here is testable from plain numbers, and
importing it does not import torch (the CLI's help shows the recipes' values).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import TYPE_CHECKING

from squeezelab.errors import SqueezelabError, SqueezelabWarning
from squeezelab.train.config import TrainConfig

if TYPE_CHECKING:  # squeezelab.models imports torch, which the CLI's help does without
    from squeezelab.models.config import ModelConfig

DEFAULT_MODEL = "squeezenet1_1"  # from scratch on images larger than SMALL_IMAGE_SIZE
SMALL_IMAGE_MODEL = "squeezenet_cifar"  # from scratch on images of SMALL_IMAGE_SIZE px or less
SMALL_IMAGE_SIZE = 64

# lr is for the recipe's batch_size and scales with the batch when the batch differs (the linear
# scaling rule; SGD recipes only).
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
# Fine-tuning pretrained features on a photo folder, chosen on a held-out fifth of
# flower-photos/train (docs/training.md): a short schedule, batches small enough for several steps
# an epoch, the new head at lr and the pretrained layers at 0.3x it. The first two stages (the
# layers before the second max pool: half of SqueezeNet 1.0's multiply-adds at 227 px) keep their
# ImageNet weights and skip their backward pass, which makes an epoch about 1.5x faster and cost
# nothing measurable (81.3% after one epoch, against 81.6% with every layer training). AdamW,
# because its steps do not grow with the features' scale: the Caffe-trained model's pooled
# features have norms in the hundreds, and an SGD step on a fresh head then overshoots to NaN.
# lr None: FINE_TUNE_LR over the weights' input scale (`fine_tune_lr`), resolved when the weights
# are opened and recorded as the number used (2.6e-4 for the shipped Caffe-trained weights: 3x the
# earlier 8.7e-5 with 9x for the pretrained layers took 3 epochs from 86.2% to 88.4%).
FINE_TUNE_RECIPE = {**SCRATCH_RECIPE, "epochs": 4, "batch_size": 32, "optimizer": "adamw", "lr": None,
                    "warmup_epochs": 0.5, "pretrained_lr_factor": 0.3, "frozen_stages": 2}
FINE_TUNE_LR = 1.5e-2  # AdamW's rate for the new head on inputs of torchvision's scale
RECIPES = {"scratch": SCRATCH_RECIPE, "small-images": SMALL_IMAGE_RECIPE, "fine-tune": FINE_TUNE_RECIPE}
# Photo folders (images larger than SMALL_IMAGE_SIZE) start from the paper's ImageNet weights, which
# ship inside squeezelab (models/pretrained/): 97% instead of 85% on cats vs dogs, offline.
SHIPPED_WEIGHTS = "squeezenet1_0.DC_IMAGENET1K"
SHIPPED_MODEL = "squeezenet1_0"
SCRATCH = ("none", "scratch")  # --weights none: train from scratch


@dataclasses.dataclass(frozen=True)
class DataFacts:
    """What the recipe needs to know of the data (an opened `Dataset` has the same attributes)."""

    image_size: int
    num_classes: int
    train_images: int  # on this process: its share under data-parallel training


@dataclasses.dataclass(frozen=True)
class Plan:
    """A run's resolved recipe: every training value set, the model to build, the changes to the
    data's augmentation, and whether a fresh model first takes its stem from the data."""

    train: TrainConfig
    model: ModelConfig
    augment: dict  # fields of data.Augment to replace ("pad", "cutout")
    init_from_data: bool  # whiten the first conv from the training images (train.whiten)


def plan(facts: DataFacts, config: TrainConfig, model=None, pretrained=None, *, resumed: bool = False) -> Plan:
    """The run's recipe. `model`: a ModelConfig, a name, a callable of (facts, pretrained) (the
    CLI's --model with its option flags), or None for the default. `pretrained`: the opened
    weights (`train.transfer.Pretrained`), which decide the model and the learning rate.

    >>> p = plan(DataFacts(32, 10, 50_000), TrainConfig())
    >>> p.model.name, p.train.recipe, p.train.batch_size, p.init_from_data
    ('squeezenet_cifar', 'small-images', 512, True)
    """
    train = resolve(config, facts.image_size, facts.train_images, pretrained)
    model_config = choose_model(facts, model, pretrained)
    whiten = bool(train.whiten_stem) and pretrained is None and not resumed
    return Plan(train, model_config, augmentation(train), whiten)


def start_weights(weights: str | None, image_size: int, model_name: str | None = None) -> tuple[str | None, str | None]:
    """The weights a new run starts from (None: from scratch), and a line to say when the default
    was set aside. Given weights win (`none` means scratch); images of SMALL_IMAGE_SIZE px or less
    train from scratch (the small-image recipe); photos start from SHIPPED_WEIGHTS unless --model
    names an architecture those weights do not fit.

    >>> start_weights(None, 128), start_weights(None, 32), start_weights("none", 128)
    (('squeezenet1_0.DC_IMAGENET1K', None), (None, None), (None, None))
    """
    if weights is not None:
        return (None, None) if str(weights).lower() in SCRATCH else (weights, None)
    if image_size <= SMALL_IMAGE_SIZE:
        return None, None
    if model_name is not None and model_name != SHIPPED_MODEL:
        return None, (f"--model {model_name}: the shipped ImageNet weights are {SHIPPED_MODEL}'s, so it trains from "
                       "scratch (--weights FILE starts from other weights)")
    return SHIPPED_WEIGHTS, None


def start_name(weights: str | None) -> str:
    """How result.json names a run's start: the short record name, the weights file, or "scratch"."""
    if weights is None:
        return "scratch"
    return weights.partition(".")[2] if weights == SHIPPED_WEIGHTS else weights


def recipe_name(image_size: int, weights: str | None = None) -> str:
    """Which recipe trains a run: fine-tune with weights, small-images at <= 64 px, scratch otherwise."""
    if weights:
        return "fine-tune"
    return "small-images" if image_size <= SMALL_IMAGE_SIZE else "scratch"


def resolve(config: TrainConfig, image_size: int, train_images: int, pretrained=None) -> TrainConfig:
    """Every value of `config` set: the recipe's where unset, the fine-tuning rate from the
    weights, and a batch no larger than the training set. A config already resolved (a resumed
    run's, or one whose `recipe` names how its caller set every value) comes back as it is.

    >>> c = resolve(TrainConfig(), 16, 1438)  # digits
    >>> c.recipe, c.batch_size, c.lr
    ('small-images', 64, 0.05)
    """
    if config.recipe != "auto":
        return config
    config = recipe_values(config, image_size, train_images)
    if pretrained is not None and config.lr is None:
        config = config.replace(lr=fine_tune_lr(pretrained))
    if config.lr is None:
        raise SqueezelabError("no learning rate: pass --lr (the fine-tuning recipe chooses one only with --weights)")
    return fitted(config, train_images)


def recipe_values(config: TrainConfig, image_size: int, train_images: int) -> TrainConfig:
    """Every unset value from the recipe for this data (`recipe_name`). Left unset, the
    small-image recipe's batch shrinks to a power of two that keeps MIN_STEPS_PER_EPOCH steps an
    epoch, and an SGD recipe's lr scales with the batch."""
    name = recipe_name(image_size, config.weights)
    recipe = RECIPES[name]
    values = {k: v for k, v in recipe.items() if getattr(config, k) is None}
    if "batch_size" in values and name == "small-images":
        fitting = 2 ** max(4, int(math.log2(max(1, train_images // MIN_STEPS_PER_EPOCH))))
        values["batch_size"] = min(recipe["batch_size"], fitting)
    batch = values.get("batch_size", config.batch_size)
    if "lr" in values and values["lr"] is not None and (config.optimizer or recipe["optimizer"]) == "sgd":
        values["lr"] = round(recipe["lr"] * batch / recipe["batch_size"], 6)
    return dataclasses.replace(config, **values, recipe=name)


def fitted(config: TrainConfig, train_images: int) -> TrainConfig:
    """`config` with a batch no larger than the training set (a warning says so): a batch of 64
    over 48 images would otherwise mean one padded step an epoch without a word."""
    if train_images < 1 or config.batch_size <= train_images:
        return config
    warnings.warn(f"--batch-size {config.batch_size} is larger than the {train_images} training images; using "
                  f"{train_images} (one step an epoch: a smaller --batch-size takes more steps)",
                  SqueezelabWarning, stacklevel=3)
    return dataclasses.replace(config, batch_size=train_images)


def fine_tune_lr(pretrained) -> float:
    """The fine-tuning learning rate for these weights: FINE_TUNE_LR over their input scale, so the
    new head's logits move by about as much a step whatever the scale of the features it reads."""
    from squeezelab.train.transfer import input_scale

    return FINE_TUNE_LR / input_scale(pretrained.preprocessing)


def augmentation(config: TrainConfig) -> dict:
    """The recipe's random shift (`translate`) and cutout, as changes to the data's own `Augment`."""
    return {field: value for field, value in (("pad", config.translate), ("cutout", config.cutout))
            if value is not None}


def default_model_config(data, name: str | None = None, **options) -> ModelConfig:
    """The model that converges from scratch on `data` (anything with `image_size` and
    `num_classes`; see docs/training.md): for images of 64 px or less `squeezenet_cifar` (its own
    defaults: batch norm, no final ReLU); otherwise, and for any other SqueezeNet named, batch
    norm, no ReLU after the final conv, and the small stem (3x3 stride 1, no first pool) for small
    images, where the standard stem would shrink a 32x32 image to 7x7 at once. A batch-norm
    SqueezeNet with bypass also normalises its classifier's input (`head_norm`: without it the
    logits run away within 20 steps, see `SqueezeNet`)."""
    from squeezelab.models.config import ModelConfig
    from squeezelab.models.registry import option_default

    small = data.image_size <= SMALL_IMAGE_SIZE
    name = name or (SMALL_IMAGE_MODEL if small else DEFAULT_MODEL)
    defaults = {"num_classes": data.num_classes}
    if name.startswith("squeezenet") and name != SMALL_IMAGE_MODEL:
        defaults.update(batch_norm=True, final_relu=False, stem="small" if small else "standard")
    chosen = {**defaults, **{k: v for k, v in options.items() if v is not None}}
    bypass = chosen.get("bypass", "none") != "none" or name.endswith("_bypass")
    batch_norm = chosen.get("batch_norm", option_default(name, "batch_norm"))  # squeezenet_cifar's is True
    if name.startswith("squeezenet") and batch_norm and bypass:
        chosen.setdefault("head_norm", True)
    return ModelConfig(name, chosen)


def choose_model_config(data, name: str | None = None, pretrained=None, **options) -> ModelConfig:
    """The model for a run: with pretrained weights their own architecture (`name` and options
    override it), otherwise `default_model_config`."""
    if pretrained is not None:
        from squeezelab.train.transfer import pretrained_model_config

        return pretrained_model_config(pretrained, data.num_classes, name, **options)
    return default_model_config(data, name, **options)


def choose_model(data, model=None, pretrained=None) -> ModelConfig:
    """`model` (see `plan`) as a ModelConfig for `data`'s classes; a class count that differs from
    the data's is refused in one line."""
    from squeezelab.models.config import ModelConfig

    if model is None or isinstance(model, str):
        model = choose_model_config(data, model, pretrained)
    elif not isinstance(model, ModelConfig):  # a function of the data, and of the weights when there are some
        model = model(data) if pretrained is None else model(data, pretrained)
    if "num_classes" not in model.options:
        model = model.with_options(num_classes=data.num_classes)
    if model.options["num_classes"] != data.num_classes:
        raise SqueezelabError(f"the model has {model.options['num_classes']} classes but the data has "
                              f"{data.num_classes}; drop num_classes or match it")
    return model
