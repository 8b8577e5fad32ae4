"""Package attributes that import their module on first use (PEP 562).

A package `__init__` that imported every submodule would import torch for `squeezelab --help`;
with `lazy_exports` the same names stay importable from the package but cost nothing until used.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Callable


class _LazyPackage(types.ModuleType):
    """Importing a submodule binds it on its package; where a public function has the same name
    (`squeezelab.compress.prune`), the function keeps the name, as an eager import would."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and name in self.__dict__.get("_lazy_names", ()):
            return
        super().__setattr__(name, value)


def lazy_exports(package: str, names: dict[str, str]) -> tuple[Callable, Callable]:
    """(`__getattr__`, `__dir__`) for `package`, loading `names` {attribute: module} on first use.

    >>> getattr_, dir_ = lazy_exports("squeezelab", {"create_model": "squeezelab.models"})
    >>> "create_model" in dir_()
    True
    """
    module = sys.modules[package]
    module_globals = module.__dict__
    module_globals["_lazy_names"] = frozenset(module_globals.get("_lazy_names", ())) | set(names)
    module.__class__ = _LazyPackage

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        module_globals[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(module_globals) | set(names))

    return __getattr__, __dir__
