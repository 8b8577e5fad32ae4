"""OpenVINO IR export: fp32 parity with PyTorch on real-looking images, NNCF int8 agreement, and the
model record travelling in the IR's runtime info into `load_predictor`."""

import dataclasses

import pytest
import torch

import squeezelab
from squeezelab.errors import SqueezelabError
from squeezelab.export.calibration import calibration_batches
from squeezelab.export.model import export_model
from squeezelab.loading import load_predictor

from test_int8 import write_images  # tests/export is on sys.path (pytest's prepend import mode)

pytest.importorskip("openvino")


def small_model(classes=("cat", "dog", "fish")):
    model = squeezelab.create_model("squeezenet1_1", num_classes=len(classes), final_relu=False)
    preprocessing = dataclasses.replace(model.record.preprocessing, resize=72, crop=64)
    model.record = model.record.replace(preprocessing=preprocessing, classes=tuple(classes))
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("openvino")
    model = small_model()
    images = write_images(tmp / "images", count=24)
    report = export_model(model, tmp / "m.xml", int8=True, calib_data=images, calib_images=24)
    return model, tmp, images, report


def test_fp32_ir_matches_pytorch_within_1e_4_and_carries_the_record(exported):
    model, tmp, images, report = exported
    assert report["openvino"]["max_abs_diff"] < 1e-4 and report["openvino"]["checked_on"] == "24 given image(s)"
    predictor = load_predictor(tmp / "m.xml")
    assert predictor.kind == "openvino" and predictor.classes == ["cat", "dog", "fish"]
    assert predictor.preprocessing == model.record.preprocessing and predictor.name == model.record.name
    batch = torch.cat(calibration_batches(images, model.record.preprocessing, limit=24))
    with torch.no_grad():
        expected = model(batch)
    assert float((predictor(batch) - expected).abs().max()) < 1e-4  # batch 24: a second compiled shape
    assert predictor(batch[:1]).shape == (1, 3)


def test_int8_ir_is_written_beside_and_agrees_with_pytorch(exported):
    model, tmp, images, report = exported
    int8 = report["int8"]
    assert int8["path"] == str(tmp / "m.int8.xml") and int8["calibration_images"] == 24
    assert int8["top1_agreement"] >= 0.9 and int8["max_abs_diff"] < 0.5
    assert (tmp / "m.int8.bin").stat().st_size < (tmp / "m.bin").stat().st_size / 2
    predictor = load_predictor(tmp / "m.int8.xml", threads=1)
    assert predictor.classes == ["cat", "dog", "fish"] and predictor.record.provenance == load_predictor(tmp / "m.xml").record.provenance


def test_an_ir_without_its_weights_is_one_clear_error(exported, tmp_path):
    _, tmp, _, _ = exported
    (tmp_path / "m.xml").write_bytes((tmp / "m.xml").read_bytes())
    with pytest.raises(SqueezelabError, match="m.bin"):
        load_predictor(tmp_path / "m.xml")


def test_the_format_follows_the_suffix_and_a_wrong_one_is_refused(tmp_path):
    with pytest.raises(SqueezelabError, match=r"\.xml"):
        export_model(small_model(), tmp_path / "m.onnx", format="openvino")
    assert not (tmp_path / "m.onnx").exists()
