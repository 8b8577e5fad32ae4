"""The JSON round-trip shared by the typed configs saved in every checkpoint, and the KEY=VALUE
options that the command line and the benchmarks turn into them."""

from __future__ import annotations

import dataclasses
import json

from squeezelab.errors import SqueezelabError


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


def parse_options(pairs: list[str] | None, flag: str) -> dict:
    """KEY=VALUE pairs with JSON values ('batch_norm=true', 'lr=0.1', 'stem="small"' or stem=small)."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SqueezelabError(f"bad {flag} {pair!r}: write KEY=VALUE, e.g. {flag} lr=0.1")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options
