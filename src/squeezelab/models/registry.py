"""A small strict registry: every model, ours and the peers, is created by name.

Unknown names and duplicate registrations fail loudly; keyword arguments that are None are
dropped (as timm does) so that a CLI flag left unset never overrides a model's own default.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
from typing import Callable

from torch import nn

from squeezelab.errors import SqueezelabError
from squeezelab.models.record import ModelRecord, Provenance, default_classes
from squeezelab.models.weights import resolve_weights
from squeezelab.preprocessing import TORCHVISION_IMAGENET


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    family: str  # "squeezenet" for ours, "peer" for torchvision's
    description: str
    weights_for: str  # whose `Weights` records `weights=` names (a bypass variant uses its base model's)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str | None = None, *, family: str = "squeezenet", description: str = "",
                   weights_for: str | None = None):
    """Decorator adding a builder to the registry under `name` (default: the function's name).

    A builder takes keyword-only, typed options and no `**kwargs`, so `create_model` can name an
    unknown option and list the real ones.
    """

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(builder).parameters.values()):
            raise ValueError(f"builder for {key!r} takes **kwargs; give it explicit keyword options")
        summary = description or (inspect.getdoc(builder) or "").partition("\n")[0]
        _REGISTRY[key] = ModelEntry(key, builder, family, summary, weights_for or key)
        return builder

    return add


def list_models(pattern: str | None = None, *, family: str | None = None) -> list[str]:
    """Registered names, optionally filtered by a shell-style pattern such as 'squeezenet*'.

    >>> "squeezenet1_1" in list_models("squeeze*")
    True
    """
    names = [n for n, e in _REGISTRY.items() if family is None or e.family == family]
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def get_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; run `squeezelab models` to list them"
        raise SqueezelabError(f"unknown model {name!r}{hint}")
    return _REGISTRY[name]


def options_of(name: str) -> list[str]:
    """The options the builder of `name` accepts."""
    return list(inspect.signature(get_entry(name).builder).parameters)


def option_default(name: str, option: str):
    """The value the builder of `name` gives `option` when it is not passed (None if it has none)."""
    parameter = inspect.signature(get_entry(name).builder).parameters.get(option)
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def build_module(name: str, **options) -> nn.Module:
    """The bare module a registered builder makes from `options`, without a record (what shape
    checks build on the `meta` device)."""
    entry = get_entry(name)
    unknown = sorted(set(options) - set(options_of(name)))
    if unknown:
        raise SqueezelabError(
            f"model {name!r} has no option {unknown[0]!r}; its options are: {', '.join(options_of(name))}")
    try:
        return entry.builder(**options)
    except TypeError as exc:
        raise SqueezelabError(f"bad option for model {name!r}: {exc}") from None


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; options set to None keep the model's default. The model carries
    its `ModelRecord` as `model.record` (default class names '0'..'n-1', the weights'
    preprocessing).

    >>> model = create_model("squeezenet1_0", num_classes=10)
    >>> model.num_classes, model.record.name
    (10, 'squeezenet1_0')
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    model = build_module(name, **kwargs)
    entry = get_entry(name)
    weights, _ = resolve_weights(entry.weights_for, kwargs.get("weights"), kwargs.get("weights_file"))
    model.record = ModelRecord(
        name, kwargs, default_classes(model.num_classes),
        weights.preprocessing if weights else TORCHVISION_IMAGENET,
        Provenance(weights=weights.name if weights else None),
    )
    if weights is not None and model.num_classes == weights.num_classes == 1000:  # the ImageNet head itself
        from squeezelab.models.imagenet_classes import IMAGENET1K_IDS, IMAGENET1K_NAMES

        model.record = model.record.replace(classes=IMAGENET1K_NAMES, class_ids=IMAGENET1K_IDS)
    return model


def model_of_weights(spec) -> nn.Module | None:
    """The eval-mode model a weights record names (`DC_IMAGENET1K`, `squeezenet1_0.IMAGENET1K_V1`)
    where `spec` is no file: its architecture with the weights' own head, classes and
    preprocessing. None for a file or an unknown name, so callers fall back to opening a file."""
    from pathlib import Path

    from squeezelab.models.weights import find_weights

    if Path(spec).exists():
        return None
    record = find_weights(str(spec))
    return None if record is None else create_model(record.model, weights=record).eval()


def model_family(name: str) -> str:
    return get_entry(name).family
