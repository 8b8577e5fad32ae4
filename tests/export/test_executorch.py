"""ExecuTorch export: fp32 parity with PyTorch by ExecuTorch's own runtime, XNNPACK int8 agreement
on held-out images, and the record travelling in m.pte.json into `load_predictor`."""

import json

import pytest
import torch

from squeezelab.errors import BadFileError, SqueezelabError
from squeezelab.export.calibration import calibration_batches
from squeezelab.export.model import export_model
from squeezelab.loading import load_predictor

from test_int8 import write_images  # tests/export is on sys.path (pytest's prepend import mode)
from test_sidecar import small_model

pytest.importorskip("executorch.runtime", reason="ExecuTorch is not installed: pip install -e '.[mobile]'")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("executorch")
    torch.manual_seed(0)
    model = small_model()
    images = write_images(tmp / "images", count=24)
    report = export_model(model, tmp / "m.pte", calib_data=images, calib_images=24)
    return model, tmp, images, report


@pytest.fixture(scope="module")
def exported_int8(exported):
    """The int8 export beside the fp32 one: 12 images calibrate, the next 12 are held out."""
    model, tmp, images, _ = exported
    return model, tmp, images, export_model(model, tmp / "m.pte", int8=True, calib_data=images, calib_images=12)


def test_fp32_program_matches_pytorch_within_1e_4_and_carries_the_record(exported):
    model, tmp, images, report = exported
    fp32 = report["executorch"]
    assert fp32["max_abs_diff"] < 1e-4 and fp32["checked_on"] == "24 given image(s)"
    assert fp32["format"] == "executorch" and fp32["precision"] == "fp32" and fp32["size_bytes"] == (tmp / "m.pte").stat().st_size
    assert json.loads((tmp / "m.pte.json").read_text())["input"]["shape"] == [1, 3, 32, 32]
    predictor = load_predictor(tmp / "m.pte")
    assert predictor.kind == "executorch" and predictor.classes == ["cat", "dog", "fish"]
    assert predictor.preprocessing == model.record.preprocessing and predictor.name == model.record.name
    batch = torch.cat(calibration_batches(images, model.record.preprocessing, limit=24))
    with torch.no_grad():
        expected = model(batch)
    assert float((predictor(batch) - expected).abs().max()) < 1e-4  # 24 images, one program run each
    with pytest.raises(SqueezelabError, match="shape"):
        predictor(torch.zeros(1, 3, 48, 48))


@pytest.mark.slow  # a second conversion, with calibration: about 10 s of CPU
def test_int8_program_is_written_beside_and_agrees_on_held_out_images(exported_int8):
    model, tmp, images, report = exported_int8
    int8 = report["int8"]
    assert int8["path"] == str(tmp / "m.int8.pte") and int8["precision"] == "int8"
    assert int8["calibration_images"] == 12 and int8["checked_on"] == "12 held-out image(s)"
    assert int8["top1_agreement"] >= 0.75 and 0 < int8["max_abs_diff"] < 0.5
    assert (tmp / "m.int8.pte").stat().st_size < (tmp / "m.pte").stat().st_size / 2
    predictor = load_predictor(tmp / "m.int8.pte", threads=1)
    assert predictor.classes == ["cat", "dog", "fish"] and predictor.kind == "executorch"


def test_a_program_without_its_sidecar_opens_and_a_broken_one_is_one_clear_error(exported, tmp_path):
    _, tmp, _, _ = exported
    (tmp_path / "bare.pte").write_bytes((tmp / "m.pte").read_bytes())
    assert load_predictor(tmp_path / "bare.pte").classes == ["0", "1", "2"]
    (tmp_path / "broken.pte").write_bytes((tmp / "m.pte").read_bytes()[:1000])
    with pytest.raises(BadFileError, match="not a loadable ExecuTorch program"):
        load_predictor(tmp_path / "broken.pte")


def test_the_format_follows_the_suffix_and_a_wrong_one_is_refused(tmp_path):
    with pytest.raises(SqueezelabError, match=r"\.pte"):
        export_model(small_model(), tmp_path / "m.onnx", format="executorch")
    assert not (tmp_path / "m.onnx").exists()
