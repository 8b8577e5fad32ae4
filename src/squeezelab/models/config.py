"""The model's part of every saved run: a registry name plus the options it was built with.

Because the options include the layer `table` when it differs from the name's default (after
structured pruning, say), a checkpoint or .sqz file rebuilds its exact architecture by itself.
Importing this module does not import torch (the CLI reads its defaults here).
"""

from __future__ import annotations

import dataclasses


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """`create_model(name, **options)`, as data that round-trips through JSON."""

    name: str = "squeezenet1_1"
    options: dict = dataclasses.field(default_factory=dict)

    def build(self):
        """The module, from the registry (which imports torch)."""
        from squeezelab.models.registry import create_model

        return create_model(self.name, **self.builder_options())

    def builder_options(self) -> dict:
        """The options as the builder takes them (layer-table rows as tuples)."""
        return {k: _tuples(v) for k, v in self.options.items()}

    def to_dict(self) -> dict:
        return {"name": self.name, "options": {k: _jsonable(v) for k, v in self.options.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return cls(name=data["name"], options=dict(data.get("options", {})))

    def with_options(self, **options) -> "ModelConfig":
        return dataclasses.replace(self, options={**self.options, **options})
