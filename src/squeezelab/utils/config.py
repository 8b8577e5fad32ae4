"""The JSON round-trip shared by the typed configs saved in every checkpoint."""

from __future__ import annotations

import dataclasses


class JsonConfig:
    """Mixin for frozen config dataclasses: `to_dict` for the checkpoint, `from_dict` that ignores
    keys it does not know, so a checkpoint written by another squeezelab version still loads."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)
