"""The networks SqueezeNet is compared with, from torchvision, under a `tv/` prefix.

They are built with torchvision's own builders (never re-implemented), so parameter counts and
MACs are the published ones, and given the same face as our models (`num_classes`,
`reset_classifier`, a `record` from `create_model`) so every tool can treat them alike.

`stem="cifar"` adapts a peer to 32x32 images the way common CIFAR-10 ports do, so that a
comparison on small images is like for like: ImageNet stems divide the side by 32 (a 32 px image
ends as a 1x1 map), the CIFAR ports by 8 (a 4x4 map; AlexNet 3x3), as SqueezeNet's "cifar" stem
does. Only the first strides and pools change (listed in CIFAR_STEMS); widths, depths and
AlexNet's 4096-wide classifier stay as published, so parameter counts still compare with the
paper (AlexNet's first conv, 11x11 stride 4, becomes 3x3 stride 1: 23,296 -> 1,792 weights).
One more change for the MobileNetV3s: torchvision averages their batch-norm statistics with
momentum 0.01, set for ImageNet's thousands of steps an epoch. A short run on a small set then
evaluates with running statistics that trail the weights: MobileNetV3-small after 7 of 10 epochs
on 8,000 CIFAR-10 images scored 10% on held-out images as trained and 56% with the statistics
measured again. Their CIFAR variants use PyTorch's default momentum, 0.1, as CIFAR ports do.
"""

from __future__ import annotations

import functools

import torchvision
from torch import nn

from squeezelab.errors import SqueezelabError
from squeezelab.models.record import default_classes
from squeezelab.models.registry import register_model

PEERS = (
    "alexnet",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "shufflenet_v2_x1_0",
    "resnet18",
    "squeezenet1_0",
    "squeezenet1_1",
)


PEER_STEMS = ("imagenet", "cifar")
# What "cifar" changes, per model: convolutions (module paths) whose stride becomes 1, first
# convolutions replaced by a 3x3 stride-1 one with the same output channels, pools removed, and a
# batch-norm momentum for every batch norm where the model's own does not suit short runs.
CIFAR_STEMS = {
    "alexnet": {"stride_1": (), "conv_3x3": ("features.0",), "no_pool": ()},
    "mobilenet_v2": {"stride_1": ("features.0.0", "features.2.conv.1.0"), "conv_3x3": (), "no_pool": ()},
    "mobilenet_v3_small": {"stride_1": ("features.0.0", "features.1.block.0.0"), "conv_3x3": (), "no_pool": (),
                           "bn_momentum": 0.1},
    "mobilenet_v3_large": {"stride_1": ("features.0.0", "features.2.block.1.0"), "conv_3x3": (), "no_pool": (),
                           "bn_momentum": 0.1},
    "shufflenet_v2_x1_0": {"stride_1": ("conv1.0",), "conv_3x3": (), "no_pool": ("maxpool",)},
    "resnet18": {"stride_1": (), "conv_3x3": ("conv1",), "no_pool": ("maxpool",)},
}


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, module)


def adapt_to_cifar(model: nn.Module, tv_name: str) -> nn.Module:
    """`model` with the CIFAR_STEMS changes for `tv_name` made in place (see the module docstring)."""
    change = CIFAR_STEMS[tv_name]
    for path in change["stride_1"]:
        model.get_submodule(path).stride = (1, 1)
    for path in change["conv_3x3"]:
        old = model.get_submodule(path)
        _replace(model, path, nn.Conv2d(old.in_channels, old.out_channels, 3, stride=1, padding=1,
                                        bias=old.bias is not None))
    for path in change["no_pool"]:
        _replace(model, path, nn.Identity())
    if "bn_momentum" in change:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = change["bn_momentum"]
    return model


def last_linear_or_conv(model: nn.Module) -> tuple[nn.Module, str]:
    """The classifier layer of a torchvision model: its last Linear, or last Conv2d if none."""
    named = list(model.named_modules())
    for kind in (nn.Linear, nn.Conv2d):
        for name, module in reversed(named):
            if isinstance(module, kind):
                return module, name
    raise SqueezelabError("model has no Linear or Conv2d layer to replace")


def reset_classifier(model: nn.Module, num_classes: int) -> None:
    """Give any registry model a fresh head for `num_classes` (for fine-tuning); its record then
    names that many classes '0'..'n-1' until the caller names them."""
    record = getattr(model, "record", None)
    if record is not None:
        model.record = record.replace(options={**record.options, "num_classes": num_classes},
                                      classes=default_classes(num_classes))
    if hasattr(model, "reset_classifier"):
        model.reset_classifier(num_classes)
        return
    old, name = last_linear_or_conv(model)
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1)
    _replace(model, name, new)
    model.num_classes = num_classes


# "torchvision": the library's own initialisation. "he": every conv and hidden linear layer drawn
# for ReLUs (He et al., 2015), the classifier small, biases zero. torchvision initialises AlexNet
# with PyTorch's layer defaults, under which its eight layers without batch norm shrink the signal:
# at 10 epochs of the small-image recipe it sat at the uniform loss for its first 5 epochs (and for
# the first 2 at a tenth of the rate) and ended at 31%. The ResNets and MobileNets already use He's.
PEER_INITS = ("torchvision", "he")


def he_init_(model: nn.Module) -> nn.Module:
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        if layer is layers[-1]:
            nn.init.normal_(layer.weight, std=0.01)
        else:
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return model


def _build_peer(tv_name: str, *, num_classes: int = 1000, stem: str = "imagenet", init: str = "torchvision",
                weights: None = None) -> nn.Module:
    if init not in PEER_INITS:
        raise SqueezelabError(f"unknown init {init!r} for tv/{tv_name}; choose one of {', '.join(PEER_INITS)}")
    if stem not in PEER_STEMS:
        raise SqueezelabError(f"unknown stem {stem!r} for tv/{tv_name}; choose one of {', '.join(PEER_STEMS)}")
    if stem == "cifar" and tv_name not in CIFAR_STEMS:
        raise SqueezelabError(f"tv/{tv_name} has no cifar stem; the models with one: "
                              + ", ".join(f"tv/{n}" for n in CIFAR_STEMS))
    if weights is not None:
        raise SqueezelabError(
            f"pretrained weights for tv/{tv_name} are fetched by torchvision; "
            "pass weights=None and load a local state dict with squeezelab.models.weights.read_state_dict"
        )
    try:
        model = torchvision.models.get_model(tv_name, num_classes=num_classes, weights=None)
    except TypeError as exc:
        raise SqueezelabError(f"bad option for tv/{tv_name}: {exc}") from None
    model.num_classes = num_classes  # the face every registry model shows (torchvision's lack it)
    if stem == "cifar":
        adapt_to_cifar(model, tv_name)
    return he_init_(model) if init == "he" else model


for _name in PEERS:
    register_model(
        f"tv/{_name}", family="peer",
        description=f"torchvision's {_name} (the reference); stem='cifar' adapts it to 32 px images"
    )(functools.partial(_build_peer, _name))
