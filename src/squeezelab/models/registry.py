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


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    family: str  # "squeezenet" for ours, "peer" for torchvision's
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str | None = None, *, family: str = "squeezenet", description: str = ""):
    """Decorator adding a builder to the registry under `name` (default: the function's name)."""

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        summary = description or (inspect.getdoc(builder) or "").partition("\n")[0]
        _REGISTRY[key] = ModelEntry(key, builder, family, summary)
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


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; options set to None keep the model's default.

    >>> model = create_model("squeezenet1_0", num_classes=10)
    >>> model.num_classes
    10
    """
    entry = get_entry(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    accepted = inspect.signature(entry.builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    if not takes_any:
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            options = ", ".join(p for p in accepted if p != "kwargs")
            raise SqueezelabError(f"model {name!r} has no option {unknown[0]!r}; its options are: {options}")
    try:
        model = entry.builder(**kwargs)
    except TypeError as exc:
        raise SqueezelabError(f"bad option for model {name!r}: {exc}") from None
    model.registry_name = name
    return model


def model_family(name: str) -> str:
    return get_entry(name).family
