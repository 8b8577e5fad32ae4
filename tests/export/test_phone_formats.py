"""ExecuTorch (.pte, XNNPACK) and LiteRT (.tflite) exports, each checked by its own runtime: fp32
parity with PyTorch, int8 agreement on held-out images, and the record travelling in the sidecar
`<file>.json` into `load_predictor`."""

import importlib
import json

import pytest
import torch

from squeezelab.errors import BadFileError, SqueezelabError
from squeezelab.export.calibration import calibration_batches
from squeezelab.export.model import export_model
from squeezelab.loading import load_predictor

from test_int8 import write_images  # tests/export is on sys.path (pytest's prepend import mode)
from test_sidecar import small_model

FORMATS = {  # format: (suffix, the modules its export and runtime need, what a broken file is called)
    "executorch": (".pte", ("executorch.runtime",), "ExecuTorch program"),
    "litert": (".tflite", ("ai_edge_litert.interpreter", "litert_torch"), "LiteRT model"),
}


def _needs(kind: str) -> str:
    suffix, modules, _ = FORMATS[kind]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            pytest.skip(f"{module} is not installed: pip install -e '.[mobile]'")
    return suffix


@pytest.fixture(scope="module", params=sorted(FORMATS))
def exported(request, tmp_path_factory):
    kind = request.param
    suffix = _needs(kind)
    tmp = tmp_path_factory.mktemp(kind)
    torch.manual_seed(0)
    model = small_model()
    images = write_images(tmp / "images", count=24)
    report = export_model(model, tmp / f"m{suffix}", calib_data=images, calib_images=24)
    return kind, suffix, model, tmp, images, report


def test_fp32_file_matches_pytorch_within_1e_4_and_carries_the_record(exported):
    kind, suffix, model, tmp, images, report = exported
    fp32 = report[kind]
    assert fp32["max_abs_diff"] < 1e-4 and fp32["checked_on"] == "24 given image(s)"
    assert fp32["format"] == kind and fp32["precision"] == "fp32"
    assert fp32["size_bytes"] == (tmp / f"m{suffix}").stat().st_size
    assert json.loads((tmp / f"m{suffix}.json").read_text())["input"]["shape"] == [1, 3, 32, 32]
    predictor = load_predictor(tmp / f"m{suffix}")
    assert predictor.kind == kind and predictor.classes == ["cat", "dog", "fish"]
    assert predictor.preprocessing == model.record.preprocessing and predictor.name == model.record.name
    batch = torch.cat(calibration_batches(images, model.record.preprocessing, limit=24))
    with torch.no_grad():
        expected = model(batch)
    assert float((predictor(batch) - expected).abs().max()) < 1e-4  # 24 images, one run each
    with pytest.raises(SqueezelabError, match="shape"):
        predictor(torch.zeros(1, 3, 48, 48))


@pytest.mark.slow  # a second conversion, with calibration: about 10 s of CPU each
def test_int8_file_is_written_beside_and_agrees_on_held_out_images(exported):
    kind, suffix, model, tmp, images, _ = exported
    report = export_model(model, tmp / f"m{suffix}", int8=True, calib_data=images, calib_images=12)
    int8 = report["int8"]  # 12 images calibrate, the next 12 are held out
    assert int8["path"] == str(tmp / f"m.int8{suffix}") and int8["precision"] == "int8"
    assert int8["calibration_images"] == 12 and int8["checked_on"] == "12 held-out image(s)"
    assert int8["top1_agreement"] >= 0.75 and 0 < int8["max_abs_diff"] < 0.5
    assert (tmp / f"m.int8{suffix}").stat().st_size < (tmp / f"m{suffix}").stat().st_size / 2
    predictor = load_predictor(tmp / f"m.int8{suffix}", threads=1)
    assert predictor.classes == ["cat", "dog", "fish"] and predictor.kind == kind


def test_a_file_without_its_sidecar_opens_and_a_broken_one_is_one_clear_error(exported, tmp_path):
    kind, suffix, _, tmp, _, _ = exported
    (tmp_path / f"bare{suffix}").write_bytes((tmp / f"m{suffix}").read_bytes())
    assert load_predictor(tmp_path / f"bare{suffix}").classes == ["0", "1", "2"]
    (tmp_path / f"broken{suffix}").write_bytes((tmp / f"m{suffix}").read_bytes()[:1000])
    with pytest.raises(BadFileError, match=f"not a loadable {FORMATS[kind][2]}"):
        load_predictor(tmp_path / f"broken{suffix}")


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_the_format_follows_the_suffix_and_a_wrong_one_is_refused(kind, tmp_path):
    _needs(kind)
    with pytest.raises(SqueezelabError, match=FORMATS[kind][0].replace(".", r"\.")):
        export_model(small_model(), tmp_path / "m.onnx", format=kind)
    assert not (tmp_path / "m.onnx").exists()
