"""`squeezelab train`: parse flags into the typed configs and call `squeezelab.train.train`."""

from __future__ import annotations

import os
import sys

from squeezelab.cli.output import print_json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model (default: SqueezeNet 1.1 on the embedded digits)")
    p.add_argument("--data", default="digits", help="digits | synthetic[:n=,classes=,size=] | cifar10:ROOT | "
                   "cifar100:ROOT | FOLDER (one sub-folder per class) | LIST.txt ('path label' lines)")
    p.add_argument("--model", default="squeezenet1_1", help="registry name (see `squeezelab models`)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate after warm-up")
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--schedule", choices=["cosine", "constant"], default="cosine")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--accumulate", type=int, default=1, help="sum gradients over this many batches per step")
    p.add_argument("--out", default="runs/latest", help="output folder (checkpoints, metrics, plots)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--image-size", type=int, default=None, help="input side in pixels (default: the data's own)")
    p.add_argument("--weights", default=None, help="fine-tune from a file (torchvision state_dict, squeezelab checkpoint, the released .net) or a record name (e.g. squeezenet1_0.IMAGENET1K_V1)")
    p.add_argument("--freeze-features", action="store_true", help="train only the classifier")
    p.add_argument("--skip-bad-images", action="store_true", help="skip and count unreadable images")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--workers", type=int, default=None, help="data-loading processes for photo folders")
    p.add_argument("--stuck-steps", type=int, default=300, help="stop when the loss sits at ln(classes) this long")
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--no-batch-norm", dest="batch_norm", action="store_false", default=None)
    p.add_argument("--final-relu", action="store_true", default=None, help="keep the ReLU after the final conv")
    p.add_argument("--stem", choices=["standard", "small"], default=None)
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--amp", choices=["auto", "off", "bf16"], default="auto")
    p.add_argument("--json", action="store_true", help="print only the final result as JSON")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    from squeezelab.data import DataConfig
    from squeezelab.train import performance
    from squeezelab.train.config import TrainConfig
    from squeezelab.train.run import default_model_config, train

    data_config = DataConfig(args.data, image_size=args.image_size, val_fraction=args.val_fraction, seed=args.seed,
                             skip_bad_images=args.skip_bad_images)
    train_config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
        weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, schedule=args.schedule,
        label_smoothing=args.label_smoothing, accumulate=args.accumulate, seed=args.seed, device=args.device,
        freeze_features=args.freeze_features, weights=args.weights, stuck_steps=args.stuck_steps,
        workers=args.workers)
    speed = performance.SpeedConfig(channels_last=args.channels_last, amp=args.amp)
    options = {"dropout": args.dropout, "batch_norm": args.batch_norm, "final_relu": args.final_relu,
               "stem": args.stem}
    model_factory = _ModelChoice(args.model, options, default_model_config)
    interactive = not args.json and sys.stdout.isatty()
    result = train(model_factory, data_config, train_config, speed, args.out, resume=args.resume,
                   progress=interactive, log=None if args.json else print)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 prints
        return 0
    if args.json:
        print_json(result)
    else:
        print(f"best val accuracy {result['best_val_acc']:.4f} (epoch {result['best_epoch']}) in "
              f"{result['seconds']:.1f}s; checkpoint {result['checkpoint']}")
    return 0


class _ModelChoice:
    """The --model and its option flags, resolved once the data (classes, image size) is known."""

    def __init__(self, name, options, factory):
        self.name, self.options, self.factory = name, options, factory

    def __call__(self, data):
        return self.factory(data, self.name, **self.options)
