"""The networks SqueezeNet is compared with, from torchvision, under a `tv/` prefix.

They are built with torchvision's own builders (never re-implemented), so parameter counts and
MACs are the published ones, and given the same face as our models (`num_classes`,
`reset_classifier`, a `record` from `create_model`) so every tool can treat them alike.
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
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    setattr(parent, name.rpartition(".")[2], new)
    model.num_classes = num_classes


def _build_peer(tv_name: str, *, num_classes: int = 1000, weights: None = None) -> nn.Module:
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
    return model


for _name in PEERS:
    register_model(
        f"tv/{_name}", family="peer", description=f"torchvision's {_name}, unchanged (the reference)"
    )(functools.partial(_build_peer, _name))
