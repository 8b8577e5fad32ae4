"""Fine-tuning from pretrained weights: the weights decide the architecture and the input.

ImageNet features only help when the network is the one they were trained in and is fed the input
they were trained on: the released Deep Compression SqueezeNet is `squeezenet1_0` without batch
norm, fed BGR 0-255 pixels minus the Caffe mean at 227 px; torchvision's weights want RGB with the
ImageNet mean/std. `open_pretrained` reads that from the weights (a record name, the released
.net file, a squeezelab checkpoint, or a torchvision state dict, whose stem tells 1.0 from 1.1), so
`--weights` alone gives the right model and input; flags the user passes still win.

`load_pretrained` fills every tensor whose name and shape match, says which layers that was, and
refuses a load that would leave most of the network at its random start (a wrong --model).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from squeezelab.errors import SqueezelabError
from squeezelab.models.config import ModelConfig
from squeezelab.models.weights import WEIGHTS, find_weights, load_torch_file, pretrained_state_dict, state_dict_of
from squeezelab.preprocessing import TORCHVISION_IMAGENET, Preprocessing

# Of the parameters before the classifier (the head is always new): below three quarters the run is
# closer to training from scratch than to fine-tuning. squeezenet1_1 filled from squeezenet1_0's
# weights matches 50% by name and shape (fire modules at other depths); a complex-bypass variant
# filled from its plain model, 78%.
MIN_LOADED_FRACTION = 0.75
STEM_SHAPES = {(96, 3, 7, 7): "squeezenet1_0", (64, 3, 3, 3): "squeezenet1_1"}  # features.0.weight


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """Weights to start from, with the architecture and input convention they were trained with."""

    spec: str
    record: str | None  # the `Weights` record name, where known
    model: ModelConfig | None  # None: a state dict whose architecture is not recognised
    preprocessing: Preprocessing
    state_dict: dict


def open_pretrained(spec: str | os.PathLike) -> Pretrained:
    """What `--weights SPEC` names: its tensors, architecture and preprocessing.

    >>> open_pretrained("compressed_SqueezeNet.net").model.name  # doctest: +SKIP
    'squeezenet1_0'
    """
    text = str(spec)
    path = Path(text)
    if path.is_file() and path.suffix.lower() != ".net":
        data = load_torch_file(path)  # read once: a squeezelab checkpoint records its model, a state dict not
        if isinstance(data, dict) and data.get("format") == "squeezelab-checkpoint":
            from squeezelab.train.checkpoint import record_from_checkpoint

            record = record_from_checkpoint(data)
            return Pretrained(text, record.provenance.weights, ModelConfig(record.name, dict(record.options)),
                              record.preprocessing, state_dict_of(data, path))
        state = state_dict_of(data, path)
    else:
        state = pretrained_state_dict(text)
    record = _record_for(text)
    if record is not None:
        return Pretrained(text, record.name, ModelConfig(record.model, {"num_classes": record.num_classes}),
                          record.preprocessing, state)
    stem = state.get("features.0.weight")
    name = STEM_SHAPES.get(tuple(stem.shape)) if stem is not None else None
    return Pretrained(text, None, ModelConfig(name, {}) if name else None, TORCHVISION_IMAGENET, state)


def _record_for(text: str):
    if Path(text).suffix.lower() == ".net":
        return WEIGHTS["squeezenet1_0.DC_IMAGENET1K"]
    if Path(text).exists():
        return None
    return find_weights(text)


def pretrained_model_config(pretrained: Pretrained, num_classes: int, name: str | None = None,
                            **options) -> ModelConfig:
    """The weights' own architecture with a new head for `num_classes`; options the user set (not
    None) win. The new SqueezeNet head has no ReLU before its pooling: a fresh 2-class head behind a
    ReLU starts with every output clipped to zero often enough that the loss sits at ln 2 (measured
    on the released model). A different `name` gets that model's builder defaults (the load then
    says how much of it the weights fill)."""
    given = {k: v for k, v in options.items() if v is not None}
    base = pretrained.model
    if base is None or (name is not None and name != base.name):
        if name is None:
            raise SqueezelabError(f"--weights {pretrained.spec}: its architecture is not one squeezelab knows; "
                                  "pass --model NAME")
        return ModelConfig(name, {**given, "num_classes": num_classes})
    head = {"final_relu": False} if base.name.startswith("squeezenet") else {}
    return ModelConfig(base.name, {**base.options, **head, **given, "num_classes": num_classes})


def input_preprocessing(pretrained: Pretrained, data_preprocessing: Preprocessing) -> Preprocessing:
    """The weights' normalisation (channel order, pixel range, mean/std) at the data's size."""
    return dataclasses.replace(pretrained.preprocessing, resize=data_preprocessing.resize,
                               crop=data_preprocessing.crop)


def input_scale(preprocessing: Preprocessing) -> float:
    """How large the normalised input is next to torchvision's convention (Caffe's 0-255 minus the
    mean: about 57x). A network without batch norm carries that scale into its features."""
    def size(p: Preprocessing) -> float:
        return p.pixel_range / (sum(p.std) / len(p.std))

    return size(preprocessing) / size(TORCHVISION_IMAGENET)


def load_pretrained(model: nn.Module, pretrained: Pretrained, log: Callable[[str], None] = lambda _m: None) -> list[str]:
    """Fill `model` with every tensor of the weights whose name and shape fit; returns the names
    of the modules that start fresh. Refuses, in one line, when less than MIN_LOADED_FRACTION of
    the parameters before the classifier would be loaded: that is training from scratch under
    another name."""
    own = model.state_dict()
    usable = {k: v for k, v in pretrained.state_dict.items() if k in own and own[k].shape == v.shape}
    body = [k for k, v in own.items() if v.is_floating_point() and not k.startswith("classifier.")]
    total = sum(own[k].numel() for k in body)
    loaded = sum(own[k].numel() for k in body if k in usable)
    fresh = sorted({k.rsplit(".", 1)[0] for k in own if k not in usable and own[k].is_floating_point()})
    share = loaded / max(1, total)
    if share < MIN_LOADED_FRACTION:
        wanted = f" (the weights are {pretrained.model.name}'s)" if pretrained.model else ""
        raise SqueezelabError(f"--weights {pretrained.spec} fills only {share:.0%} of this model's layers before the "
                              f"classifier{wanted}; "
                              f"the rest would start from scratch: drop --model and its options to use the weights' own")
    model.load_state_dict(usable, strict=False)
    _zero_new_head(model, fresh)
    log(f"loaded {len(usable)} of {len(own)} tensors from {pretrained.spec} ({share:.1%} of the parameters before the classifier); "
        f"new: {', '.join(fresh) or 'none'}")
    return fresh


def _zero_new_head(model: nn.Module, fresh: list[str]) -> None:
    """A new classifier starts at zero: every class at the same logit (the loss at ln k) rather than
    at random logits as large as the pretrained features (hundreds, for Caffe's input scale)."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name in fresh:
            if name.startswith("classifier") and name in modules:
                for tensor in modules[name].parameters(recurse=False):
                    tensor.zero_()
