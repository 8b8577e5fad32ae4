"""Matching a data set's class folders to a model's classes by WordNet id or name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from squeezelab.data.class_match import class_ids_of, match_classes, restrict_result
from squeezelab.errors import SqueezelabError
from squeezelab.models.imagenet_classes import IMAGENET1K_IDS, IMAGENET1K_NAMES
from squeezelab.models.record import ModelRecord


def test_imagenet_table_is_the_standard_order():
    assert len(IMAGENET1K_IDS) == len(set(IMAGENET1K_IDS)) == 1000
    assert list(IMAGENET1K_IDS) == sorted(IMAGENET1K_IDS)
    assert IMAGENET1K_IDS[0] == "n01440764" and IMAGENET1K_NAMES[0] == "tench"
    assert IMAGENET1K_IDS[404] == "n02690373" and IMAGENET1K_NAMES[404] == "airliner"
    assert IMAGENET1K_IDS[-1] == "n15075141" and IMAGENET1K_NAMES[-1] == "toilet tissue"


def test_torchvision_names_are_the_table_names():
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    assert list(IMAGENET1K_NAMES) == list(_IMAGENET_CATEGORIES)


def test_subset_of_classes_matches_by_id_or_name_never_by_position():
    ids = ["n01", "n02", "n03"]
    assert match_classes(["n03", "n01"], ["a", "b", "c"], ids) == [2, 0]
    assert match_classes(["Great_White  shark", "b"], ["great white shark", "b"]) == [0, 1]


@pytest.mark.parametrize("data, message", [(["zebra"], "match none"), (["a", "n01"], "same model class")])
def test_unmatched_or_doubled_classes_are_one_line_errors(data, message):
    with pytest.raises(SqueezelabError, match=message) as info:
        match_classes(data, ["a", "b"], ["n01", "n02"])
    assert "\n" not in str(info.value)


def test_class_ids_of_imagenet_names_are_the_wordnet_ids():
    imagenet = SimpleNamespace(record=ModelRecord("squeezenet1_0", classes=IMAGENET1K_NAMES))
    other = SimpleNamespace(record=ModelRecord("squeezenet1_1", classes=["cat", "dog"]))
    own = SimpleNamespace(record=ModelRecord("squeezenet1_1", classes=["cat", "dog"], class_ids=["n1", "n2"]))
    assert class_ids_of(imagenet) == list(IMAGENET1K_IDS)
    assert class_ids_of(other) is None
    assert class_ids_of(own) == ["n1", "n2"]


def test_restrict_result_keeps_the_data_classes_and_counts_the_rest():
    result = {"classes": ["a", "b", "c"], "per_class": [{"class": c} for c in "abc"], "top1": 0.5,
              "confusion": [[1, 0, 0], [0, 0, 0], [1, 0, 2]]}
    out = restrict_result(result, [2, 0], ["C", "A"])
    assert out["classes"] == ["c", "a"] and out["confusion"] == [[2, 1], [0, 1]]
    assert out["outside"] == [0, 0] and out["top1"] == 0.5 and out["matched"] == {"C": "c", "A": "a"}
    assert restrict_result(result, [2], ["C"])["outside"] == [1]
