"""`export_model`: the ONNX file, checked on the calibration images, and its int8 copy."""

import dataclasses

import pytest

import squeezelab
from squeezelab.errors import SqueezelabError
from squeezelab.export.model import export_model, int8_path_for

from test_int8 import write_images  # tests/export is on sys.path (pytest's prepend import mode)


def test_export_model_writes_fp32_and_int8_with_their_agreement(tmp_path):
    model = squeezelab.create_model("squeezenet1_1", num_classes=3, final_relu=False)
    preprocessing = dataclasses.replace(model.record.preprocessing, resize=72, crop=64)
    model.record = model.record.replace(preprocessing=preprocessing)
    images = write_images(tmp_path / "images", count=9)
    report = export_model(model, tmp_path / "m.onnx", int8=True, calib_data=images, calib_images=9)
    assert report["onnx"]["checked_on"] == "1 given input(s)" and report["onnx"]["max_abs_diff"] < 1e-3
    assert report["int8"]["path"] == int8_path_for(tmp_path / "m.onnx") == str(tmp_path / "m.int8.onnx")
    assert report["int8"]["calibration_images"] == 9 and report["int8"]["images"] == 9
    assert (tmp_path / "m.int8.onnx").stat().st_size < (tmp_path / "m.onnx").stat().st_size


def test_int8_without_calibration_images_is_refused_before_writing(tmp_path):
    model = squeezelab.create_model("squeezenet1_1", num_classes=3)
    with pytest.raises(SqueezelabError, match="calib-data"):
        export_model(model, tmp_path / "m.onnx", int8=True)
    assert not (tmp_path / "m.onnx").exists()
