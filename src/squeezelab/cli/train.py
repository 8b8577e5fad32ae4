"""`squeezelab train`: parse flags into the typed configs and call `squeezelab.train.train`."""

from __future__ import annotations

import argparse
import os
import sys

from squeezelab.cli.output import AMP_CHOICES, AMP_HELP, print_json, say
from squeezelab.data.config import DataConfig
from squeezelab.errors import SqueezelabError
from squeezelab.train.config import SCHEDULES, TrainConfig
from squeezelab.train.recipe import (DEFAULT_MODEL, FINE_TUNE_LR, FINE_TUNE_RECIPE, SCRATCH_RECIPE, SHIPPED_MODEL,
                                     SHIPPED_WEIGHTS, SMALL_IMAGE_MODEL, SMALL_IMAGE_RECIPE)

_DATA, _TRAIN = DataConfig(), TrainConfig()


def _default(field: str) -> str:
    """The help text's default: each recipe's value (small images, photos from the ImageNet weights,
    photos from scratch)."""
    small, scratch = SMALL_IMAGE_RECIPE.get(field), SCRATCH_RECIPE.get(field)
    tuned = FINE_TUNE_RECIPE.get(field, scratch)
    tuned = "one chosen from the weights" if tuned is None else tuned
    return f"{small} for images of 64 px or less, {tuned} for larger ones from pretrained weights, {scratch} with --scratch"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model (default: squeezenet_cifar on the embedded digits)",
                              description="Train a model and write checkpoints, metrics and plots into --out. "
                              "Epoch lines go to stdout on a terminal (with a progress bar) and to stderr otherwise.")
    p.add_argument("--data", default=_DATA.spec, help="digits | synthetic[:n=,classes=,size=] | cifar10:ROOT | "
                   "cifar100:ROOT | FOLDER (one sub-folder per class) | LIST.txt ('path label' lines)")
    p.add_argument("--model", default=None, help=f"registry name (see `squeezelab models`; default: {SMALL_IMAGE_MODEL} for images of 64 px or "
                   f"less; for larger ones the weights' own model ({SHIPPED_MODEL} for the shipped ImageNet weights), "
                   f"{DEFAULT_MODEL} with --scratch). A model the weights do not fit trains from scratch")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs to train (default: {_default('epochs')}); with --resume the run's new total: more "
                        "than it had extends a finished run")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"images per step (default: {_default('batch_size')}; small sets get a smaller power of two that "
                        "keeps 16 steps an epoch); a batch larger than the training set is reduced to it, with a warning")
    p.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate after warm-up (default: {_default('lr')}, scaled with the batch when "
                        f"--batch-size differs; from pretrained weights {FINE_TUNE_LR} over the weights' input scale: "
                        "2.6e-04 for the shipped Caffe-trained weights' 0-255 input)")
    p.add_argument("--pretrained-lr-factor", type=float, default=None,
                   help=f"from pretrained weights, the pretrained layers learn at --lr x this and the new classifier at --lr "
                        f"(default: {_default('pretrained_lr_factor')})")
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default=None, help=f"default: {_default('optimizer')}")
    p.add_argument("--weight-decay", type=float, default=_TRAIN.weight_decay)
    p.add_argument("--warmup-epochs", type=float, default=None, help=f"default: {_default('warmup_epochs')}")
    p.add_argument("--schedule", choices=list(SCHEDULES), default=None,
                   help=f"after warm-up: decay to 0 (cosine, linear) or constant (default: {_default('schedule')})")
    p.add_argument("--label-smoothing", type=float, default=None, help=f"default: {_default('label_smoothing')}")
    p.add_argument("--translate", type=int, default=None,
                   help=f"random shift in pixels for images of 64 px or less (default: {SMALL_IMAGE_RECIPE['translate']})")
    p.add_argument("--cutout", type=int, default=None,
                   help="grey out a random square of this side in each training image of 64 px or less "
                        f"(default: {SMALL_IMAGE_RECIPE.get('cutout', 0)}, none)")
    p.add_argument("--whiten-stem", action=argparse.BooleanOptionalAction, default=None,
                   help="start the first conv as the patch whitening of the training images, from scratch "
                        f"(default: {'on' if SMALL_IMAGE_RECIPE.get('whiten_stem') else 'off'} for images of "
                        "64 px or less, off for larger ones)")
    p.add_argument("--accumulate", type=int, default=_TRAIN.accumulate, help="sum gradients over this many batches per step")
    p.add_argument("--out", default="runs/latest", help="output folder (checkpoints, metrics, plots)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.pt with its recorded settings; --epochs N above the "
                        "run's total extends it: the learning-rate schedule is recomputed over the N epochs and "
                        "continues from the step reached (a finished cosine run restarts at that point of the longer "
                        "curve)")
    p.add_argument("--seed", type=int, default=_TRAIN.seed)
    p.add_argument("--val-fraction", type=float, default=_DATA.val_fraction)
    p.add_argument("--image-size", "--input-size", dest="image_size", type=int, default=_DATA.image_size,
                   help="input side in pixels (default: the data's own for images of 64 px or less; for larger ones "
                        "the fine-tuning recipe's, or 128 with --scratch)")
    p.add_argument("--weights", default=_TRAIN.weights,
                   help="the weights to start from: a record name (default for images larger than 64 px: "
                        f"{SHIPPED_WEIGHTS.partition('.')[2]}, the paper's ImageNet SqueezeNet shipped with squeezelab; "
                        "or e.g. squeezenet1_0.IMAGENET1K_V1), a file (torchvision state_dict, squeezelab checkpoint, the "
                        "released .net), or none (from scratch). The weights decide the model, its options and the "
                        "input (channel order, normalisation); the classifier is replaced for the data's classes, and "
                        "the fine-tuning recipe fills the training flags not given")
    p.add_argument("--scratch", action="store_true", help="train from scratch (the same as --weights none)")
    p.add_argument("--freeze-features", action="store_true", help="train only the classifier")
    p.add_argument("--frozen-stages", type=int, default=None,
                   help=f"fine-tuning: the layers before the k-th max pool keep their pretrained weights and skip "
                        f"their backward pass (default: {FINE_TUNE_RECIPE.get('frozen_stages', 0)})")
    p.add_argument("--skip-bad-images", action="store_true", help="skip and count unreadable images")
    p.add_argument("--device", default=_TRAIN.device, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--workers", type=int, default=_TRAIN.workers,
                   help="data-loading processes for photo folders (default: one per core, at most 4)")
    p.add_argument("--stuck-steps", type=int, default=_TRAIN.stuck_steps,
                   help="stop when the loss sits at ln(classes) this long")
    p.add_argument("--dropout", type=float, default=None, help="dropout before the classifier (default: the model's)")
    p.add_argument("--no-batch-norm", dest="batch_norm", action="store_false", default=None)
    p.add_argument("--final-relu", action="store_true", default=None, help="keep the ReLU after the final conv")
    p.add_argument("--stem", choices=["standard", "small", "cifar"], default=None,
                   help="default: small for images of 64 px or less (cifar: 3x3 stride-1 conv, then the first pool)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--amp", choices=AMP_CHOICES, default="auto", help=AMP_HELP)
    p.add_argument("--json", action="store_true", help="print only the final result as JSON on stdout")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    if args.scratch and args.weights not in (None, "none"):
        raise SqueezelabError(f"--scratch and --weights {args.weights} contradict each other; drop one")
    data_config = DataConfig(args.data, image_size=args.image_size, val_fraction=args.val_fraction, seed=args.seed,
                             skip_bad_images=args.skip_bad_images)
    train_config = TrainConfig.for_run(
        "none" if args.scratch else args.weights, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, schedule=args.schedule,
        label_smoothing=args.label_smoothing, translate=args.translate, cutout=args.cutout,
        whiten_stem=args.whiten_stem, accumulate=args.accumulate, seed=args.seed, device=args.device,
        freeze_features=args.freeze_features, frozen_stages=args.frozen_stages, stuck_steps=args.stuck_steps,
        workers=args.workers, pretrained_lr_factor=args.pretrained_lr_factor)  # a bad value is refused here, before torch is loaded
    from squeezelab import runtime
    from squeezelab.train.recipe import choose_model_config
    from squeezelab.train.run import train

    speed = runtime.SpeedConfig(channels_last=args.channels_last, amp=args.amp)
    options = {"dropout": args.dropout, "batch_norm": args.batch_norm, "final_relu": args.final_relu,
               "stem": args.stem}
    model_factory = _ModelChoice(args.model, options, choose_model_config)
    interactive = not args.json and sys.stdout.isatty()
    result = train(model_factory, data_config, train_config, speed, args.out, resume=args.resume,
                   resume_epochs=args.epochs if args.resume else None,
                   progress=interactive, log=print if interactive else say)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 prints
        return 0
    if args.json:
        print_json(result)
    else:
        print(f"best val accuracy {result['best_val_acc']:.4f} (epoch {result['best_epoch']}) in "
              f"{result['seconds']:.1f}s; checkpoint {result['checkpoint']}")
    return 0


class _ModelChoice:
    """The --model and its option flags, resolved once the data (classes, image size) and the
    --weights (their architecture) are known."""

    def __init__(self, name, options, factory):
        self.name, self.options, self.factory = name, options, factory

    def __call__(self, data, pretrained=None):
        return self.factory(data, self.name, pretrained, **self.options)
