"""The record beside a phone model (m.pte.json, m.tflite.json): written from the same metadata as
ONNX's, read back into the same ModelRecord, and checked against the program's own shapes."""

import dataclasses
import json

import pytest

import squeezelab
from squeezelab.errors import BadFileError
from squeezelab.export.onnx import metadata_for
from squeezelab.export.sidecar import read_sidecar, sidecar_path, write_sidecar


def small_model(classes=("cat", "dog", "fish"), crop=32):
    """The tiny CIFAR SqueezeNet the phone-format tests export: 3 classes at 32 px."""
    model = squeezelab.create_model("squeezenet_cifar", num_classes=len(classes))
    preprocessing = dataclasses.replace(model.record.preprocessing, resize=crop + 4, crop=crop)
    model.record = model.record.replace(preprocessing=preprocessing, classes=tuple(classes))
    return model.eval()


def test_the_sidecar_round_trips_the_record(tmp_path):
    model = small_model()
    path = tmp_path / "m.pte"
    written = write_sidecar(path, metadata_for(model, 32), runtime="executorch", precision="fp32",
                            input_shape=[1, 3, 32, 32], output_shape=[1, 3])
    assert written == sidecar_path(path) == tmp_path / "m.pte.json"
    document = json.loads(written.read_text())
    assert document["classes"] == ["cat", "dog", "fish"] and document["input"]["layout"] == "NCHW"
    assert document["preprocessing"]["crop"] == 32 and document["preprocessing"]["mean"] == list(model.record.preprocessing.mean)
    record, num_params = read_sidecar(path, [1, 3, 32, 32], [1, 3])
    assert record.classes == model.record.classes and record.preprocessing == model.record.preprocessing
    assert record.name == "squeezenet_cifar" and num_params == sum(p.numel() for p in model.parameters())


def test_a_missing_sidecar_gives_default_classes_and_a_bad_one_is_refused(tmp_path):
    record, num_params = read_sidecar(tmp_path / "m.tflite", [1, 3, 40, 40], [1, 4])
    assert record.classes == ("0", "1", "2", "3") and record.preprocessing.crop == 40 and num_params is None
    sidecar_path(tmp_path / "m.tflite").write_text("{not json")
    with pytest.raises(BadFileError, match="not valid JSON"):
        read_sidecar(tmp_path / "m.tflite", [1, 3, 40, 40], [1, 4])
    sidecar_path(tmp_path / "m.tflite").write_text(json.dumps({"classes": ["a", "b"]}))
    with pytest.raises(BadFileError, match="classes"):  # two names for a four-class output
        read_sidecar(tmp_path / "m.tflite", [1, 3, 40, 40], [1, 4])
