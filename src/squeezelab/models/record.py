"""What a model is, as data: the one record every file format saves and every loader returns.

A `ModelRecord` names the registry builder and the options that rebuild the architecture
(including a pruned layer table), the class names in output order, the preprocessing the weights
expect, and where the weights came from (`Provenance`: the squeezelab version and git revision
that wrote the file, and the `Weights` record the training started from). It round-trips through
a plain JSON dict, so a checkpoint, a .sqz header and ONNX metadata all carry the same thing.

A model built by `create_model` or `rebuild` carries its record as `model.record`; nothing else is
attached to the module.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
from importlib import metadata
from pathlib import Path

from squeezelab.preprocessing import TORCHVISION_IMAGENET, Preprocessing

FILE_OPTIONS = ("weights", "weights_file")  # read other files: never part of a saved record


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Which squeezelab wrote a file, from which source revision, starting from which weights."""

    squeezelab_version: str | None = None
    git_revision: str | None = None  # None outside a git checkout
    weights: str | None = None  # name of the `Weights` record the weights started from

    @classmethod
    def current(cls, weights: str | None = None) -> "Provenance":
        """The running squeezelab's version and revision."""
        return cls(package_version(), git_revision(), weights)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "Provenance":
        data = data if isinstance(data, dict) else {}
        return cls(**{f.name: _text_or_none(data.get(f.name)) for f in dataclasses.fields(cls)})


def _text_or_none(value) -> str | None:
    return None if value is None else str(value)


@functools.lru_cache(maxsize=1)
def package_version() -> str | None:
    try:
        return metadata.version("squeezelab")
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The commit of the checkout squeezelab runs from, '+dirty' when it has local changes; None
    when the package is not inside its own checkout (an installed wheel) or git is missing."""
    package = Path(__file__).resolve().parents[1]
    try:
        top = _git(package, "rev-parse", "--show-toplevel")
        if top is None or Path(top).resolve() / "src" / "squeezelab" != package:
            return None  # some other repository that happens to contain the install
        revision = _git(package, "rev-parse", "HEAD")
        dirty = _git(package, "status", "--porcelain", "--untracked-files=no", "--", str(package))
    except OSError:
        return None
    if revision is None:
        return None
    return revision + ("+dirty" if dirty else "")


def _git(where: Path, *args: str) -> str | None:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=5, env=env)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def default_classes(num_classes: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(num_classes))


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    """A model's architecture, classes, input convention and origin; `rebuild(record, state_dict)`
    turns it back into the module.

    >>> record = ModelRecord("squeezenet1_1", {"num_classes": 2}, ("cat", "dog"))
    >>> ModelRecord.from_dict(record.to_dict()) == record
    True
    """

    name: str
    options: dict = dataclasses.field(default_factory=dict)  # builder options, JSON-able
    classes: tuple[str, ...] = ()
    preprocessing: Preprocessing = TORCHVISION_IMAGENET
    provenance: Provenance = Provenance()
    notes: dict = dataclasses.field(default_factory=dict)  # what a file kept beside the model (.sqz: data, source)
    class_ids: tuple[str, ...] = ()  # WordNet ids of the classes where known (ImageNet): folders named by id match

    def __post_init__(self):
        options = {k: _jsonable(v) for k, v in self.options.items() if k not in FILE_OPTIONS}
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "class_ids", tuple(str(c) for c in self.class_ids))
        object.__setattr__(self, "notes", _jsonable(dict(self.notes)))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def replace(self, **changes) -> "ModelRecord":
        return dataclasses.replace(self, **changes)

    def stamped(self) -> "ModelRecord":
        """This record as the running squeezelab writes it: its own version and revision."""
        return self.replace(provenance=Provenance.current(self.provenance.weights))

    def to_dict(self) -> dict:
        return {"name": self.name, "options": dict(self.options), "classes": list(self.classes),
                "preprocessing": self.preprocessing.to_dict(), "provenance": self.provenance.to_dict(),
                "notes": dict(self.notes), "class_ids": list(self.class_ids)}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelRecord":
        preprocessing = data.get("preprocessing")
        return cls(
            name=data["name"],
            options=dict(data.get("options") or {}),
            classes=tuple(data.get("classes") or ()),
            preprocessing=Preprocessing.from_dict(preprocessing) if preprocessing else TORCHVISION_IMAGENET,
            provenance=Provenance.from_dict(data.get("provenance")),
            notes=dict(data.get("notes") or {}),
            class_ids=tuple(data.get("class_ids") or ()),
        )


class RecordFace:
    """The face every loaded model shows, read from its `record`: name, classes (a list, in output
    order), preprocessing and num_classes. Predictors and ONNX models inherit it."""

    record: ModelRecord

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def classes(self) -> list[str]:
        return list(self.record.classes)

    @property
    def preprocessing(self) -> Preprocessing:
        return self.record.preprocessing

    @property
    def num_classes(self) -> int:
        return self.record.num_classes
