import json
import re
from pathlib import Path

import pytest
import torch

from squeezelab.errors import SqueezelabError
from squeezelab.models import (
    ModelRecord, Provenance, create_model, list_models, options_of, rebuild, record_of, register_model,
)
from squeezelab.models.record import git_revision, package_version
from squeezelab.models.squeezenet import SqueezeNet
from squeezelab.preprocessing import CAFFE_IMAGENET


def test_record_round_trips_through_json_with_a_pruned_table():
    record = ModelRecord("squeezenet1_1", {"num_classes": 3, "table": (("conv", 8, 3, 2, 0), ("fire", 4, 8, 8))},
                         ("a", "b", "c"), CAFFE_IMAGENET, Provenance("1.0", "abc", "squeezenet1_1.CAFFE_IMAGENET1K"),
                         {"data": {"spec": "digits"}})
    again = ModelRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record
    assert again.options["table"][1] == ["fire", 4, 8, 8] and again.num_classes == 3


def test_record_never_keeps_options_that_read_files():
    record = ModelRecord("squeezenet1_0", {"weights": "x.pth", "weights_file": "y.pth", "dropout": 0.1})
    assert record.options == {"dropout": 0.1}


def test_create_model_attaches_the_record():
    model = create_model("squeezenet1_1_simple_bypass", num_classes=4, dropout=None)
    assert model.record.name == "squeezenet1_1_simple_bypass"
    assert model.record.options == {"num_classes": 4}
    assert model.record.classes == ("0", "1", "2", "3")


def test_rebuild_gives_the_same_model_and_record():
    model = create_model("squeezenet_meta", base_e=16, incr_e=16, num_classes=3, batch_norm=True).eval()
    model.record = model.record.replace(classes=["x", "y", "z"])
    again = rebuild(ModelRecord.from_dict(json.loads(json.dumps(model.record.to_dict()))), model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(again(x), model(x))
    assert again.record == model.record and not again.training


def test_rebuild_refuses_weights_or_classes_that_do_not_fit():
    model = create_model("squeezenet1_1", num_classes=3)
    with pytest.raises(SqueezelabError, match="do not fit"):
        rebuild(model.record.replace(options={"num_classes": 5}), model.state_dict())
    with pytest.raises(SqueezelabError, match="2 class names"):
        rebuild(model.record.replace(classes=["a", "b"]), model.state_dict())


def test_record_of_a_model_built_without_the_registry_rebuilds_it():
    model = SqueezeNet(num_classes=5, bypass="simple").eval()
    record = record_of(model)
    assert record.options["bypass"] == "simple" and record.num_classes == 5
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(rebuild(record, model.state_dict())(x), model(x))


@pytest.mark.parametrize("name", list_models())
def test_builders_have_typed_options_and_no_catch_all(name):
    options = options_of(name)
    assert "num_classes" in options and "kwargs" not in options


def test_unknown_option_is_refused_before_the_builder_runs():
    with pytest.raises(SqueezelabError, match="has no option 'bypass'; its options are: num_classes"):
        create_model("squeezenet1_0_simple_bypass", bypass="complex")
    with pytest.raises(SqueezelabError, match="has no option 'dropout'"):
        create_model("tv/resnet18", dropout=0.2)


def test_a_builder_taking_kwargs_cannot_register():
    with pytest.raises(ValueError, match="kwargs"):
        register_model("loose_model")(lambda **kw: SqueezeNet())
    assert "loose_model" not in list_models()


def test_provenance_names_this_squeezelab():
    current = Provenance.current("w")
    assert current.squeezelab_version == package_version() is not None
    assert current.weights == "w"
    checkout = (Path(__file__).resolve().parents[2] / ".git").exists()
    revision = git_revision()
    if checkout:
        assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", revision)
    else:
        assert revision is None
