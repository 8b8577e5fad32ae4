"""Which of a model's classes each of a data set's classes is, by WordNet id or by name.

An ImageNet-style folder names its class folders by WordNet id (`n01440764/`) and may hold only
some of the 1000 classes, so its label 0 is whatever folder sorts first: matching labels by
position would score a model against the wrong classes. Matching by id or name never does.

>>> match_classes(["n01443537", "tench"], ["tench", "goldfish"], ["n01440764", "n01443537"])
[1, 0]
"""

from __future__ import annotations

from typing import Sequence

from squeezelab.errors import SqueezelabError


def _key(text: str) -> str:
    return " ".join(text.replace("_", " ").split()).lower()


def class_ids_of(model) -> list[str] | None:
    """The model's WordNet ids: its record's `class_ids`, or the ImageNet-1k ids when its class
    names are exactly the ImageNet-1k names."""
    from squeezelab.models.imagenet_classes import IMAGENET1K_IDS, IMAGENET1K_NAMES

    record = model.record
    if record.class_ids:
        return list(record.class_ids)
    return list(IMAGENET1K_IDS) if list(record.classes) == list(IMAGENET1K_NAMES) else None


def match_classes(data_classes: Sequence[str], model_classes: Sequence[str],
                  model_ids: Sequence[str] | None = None) -> list[int]:
    """For each data class (a folder name: a WordNet id or a class name), the model's class index.

    Case, underscores and repeated spaces are ignored. Raises a one-line `SqueezelabError` when a
    data class matches nothing or two data classes match the same model class.
    """
    lookup: dict[str, int] = {}
    for index, name in enumerate(model_classes):
        lookup.setdefault(_key(name), index)
    for index, wnid in enumerate(model_ids or []):
        lookup[_key(wnid)] = index
    missing = [c for c in data_classes if _key(c) not in lookup]
    if missing:
        raise SqueezelabError(
            f"{len(missing)} of the data's {len(data_classes)} classes match none of the model's class names or ids "
            f"(e.g. {missing[:3]}; the model's start {list(model_classes)[:3]}); name the class folders like those")
    indices = [lookup[_key(c)] for c in data_classes]
    if len(set(indices)) != len(indices):
        seen: dict[int, str] = {}
        for name, index in zip(data_classes, indices):
            if index in seen:
                raise SqueezelabError(f"data classes {seen[index]!r} and {name!r} are the same model class "
                                      f"{model_classes[index]!r}; keep one folder per class")
            seen[index] = name
    return indices


def restrict_result(result: dict, keep: Sequence[int], data_classes: Sequence[str]) -> dict:
    """An evaluation over all the model's classes, reported for the data's classes only.

    top1/top5/loss stay as computed over every class (a prediction of a class the folder lacks
    is wrong); `classes`, `per_class` and the square `confusion` keep the data's classes, and
    `outside` counts, per data class, the predictions of classes the data does not hold.
    """
    confusion = result["confusion"]
    rows = [confusion[i] for i in keep]
    return {
        **result,
        "classes": [result["classes"][i] for i in keep],
        "per_class": [result["per_class"][i] for i in keep],
        "confusion": [[row[j] for j in keep] for row in rows],
        "outside": [sum(row) - sum(row[j] for j in keep) for row in rows],
        "matched": dict(zip(data_classes, (result["classes"][i] for i in keep))),
    }
