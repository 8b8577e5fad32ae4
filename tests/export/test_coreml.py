"""Core ML export: an image-input classifier whose saved spec carries the model's input size and
class labels (Core ML cannot run on Linux, so the spec is what is checked), and preprocessing
baked in as scale and bias, or as a normalising first layer where one scale cannot express it."""

import dataclasses
import json

import pytest
import torch

from squeezelab.errors import SqueezelabError
from squeezelab.export.coreml import check_coreml, image_input
from squeezelab.export.model import export_model
from squeezelab.preprocessing import Preprocessing

from test_sidecar import small_model


def test_one_deviation_for_all_channels_is_the_image_inputs_scale_and_bias():
    model = small_model()
    same = Preprocessing(mean=(0.5, 0.4, 0.3), std=(0.25, 0.25, 0.25))
    converted, scale_bias = image_input(same, model)
    assert converted is model
    pixels = torch.rand(1, 3, 8, 8) * 255
    by_image_input = pixels * scale_bias["scale"] + torch.tensor(scale_bias["bias"]).view(1, 3, 1, 1)
    torch.testing.assert_close(by_image_input, same.normalize(pixels))


def test_per_channel_deviations_become_a_first_layer_with_the_same_result():
    model = small_model()
    imagenet = dataclasses.replace(model.record.preprocessing, crop=32)
    converted, scale_bias = image_input(imagenet, model)
    assert converted is not model and scale_bias["bias"] == [0.0, 0.0, 0.0]
    pixels = torch.rand(2, 3, 32, 32) * 255
    with torch.no_grad():
        torch.testing.assert_close(converted(pixels * scale_bias["scale"]), model(imagenet.normalize(pixels)))


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    pytest.importorskip("coremltools", reason="coremltools is not installed: pip install -e '.[mobile]'")
    tmp = tmp_path_factory.mktemp("coreml")
    model = small_model(classes=("cat", "dog", "fish"))
    return model, tmp, export_model(model, tmp / "m.mlpackage")["coreml"]


def test_the_package_is_an_image_classifier_with_the_models_labels(package):
    model, tmp, report = package
    assert report["path"] == str(tmp / "m.mlpackage") and report["format"] == "coreml" and report["classes"] == 3
    assert report["max_abs_diff"] is None and report["checked_on"].startswith("not run") and "macOS" in report["checked_on"]
    assert (tmp / "m.mlpackage" / "Manifest.json").is_file() and report["size_bytes"] > 100_000
    assert check_coreml(tmp / "m.mlpackage", 32, ["cat", "dog", "fish"])["classes"] == 3
    with pytest.raises(SqueezelabError, match="class labels"):
        check_coreml(tmp / "m.mlpackage", 32, ["cat", "fish", "dog"])
    with pytest.raises(SqueezelabError, match="64x64"):
        check_coreml(tmp / "m.mlpackage", 64, ["cat", "dog", "fish"])


def test_the_record_travels_in_the_packages_metadata(package):
    import coremltools as ct

    model, tmp, _ = package
    metadata = ct.models.MLModel(str(tmp / "m.mlpackage"), skip_model_load=True).user_defined_metadata
    assert json.loads(metadata["squeezelab.classes"]) == ["cat", "dog", "fish"]
    assert Preprocessing.from_dict(json.loads(metadata["squeezelab.preprocessing"])) == model.record.preprocessing


def test_int8_and_a_wrong_suffix_are_refused_with_one_line(tmp_path):
    with pytest.raises(SqueezelabError, match="executorch or litert"):
        export_model(small_model(), tmp_path / "m.mlpackage", int8=True, calib_data=str(tmp_path))
    with pytest.raises(SqueezelabError, match=r"\.mlpackage"):
        export_model(small_model(), tmp_path / "m.onnx", format="coreml")
