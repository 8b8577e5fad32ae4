"""ncnn export through pnnx, opened with ncnn's Python binding (fp16 off): parity with PyTorch,
the record JSON beside the param/bin pair, and int8 refused in one line."""

import json

import pytest
import torch

from squeezelab.errors import SqueezelabError
from squeezelab.export.calibration import calibration_batches
from squeezelab.export.model import export_model
from squeezelab.loading import load_predictor

from test_int8 import write_images  # tests/export is on sys.path (pytest's prepend import mode)
from test_openvino import small_model

pytest.importorskip("ncnn")
pytest.importorskip("pnnx")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ncnn")
    model = small_model(("a", "b", "c", "d"))
    images = write_images(tmp / "images", count=12)
    report = export_model(model, tmp / "m.param", calib_data=images, calib_images=12)
    return model, tmp, images, report


def test_ncnn_matches_pytorch_within_1e_4_through_the_python_binding(exported):
    model, tmp, images, report = exported
    assert report["ncnn"]["max_abs_diff"] < 1e-4 and report["ncnn"]["images"] == 12
    predictor = load_predictor(tmp / "m.param", threads=1)
    assert predictor.kind == "ncnn"
    batch = torch.cat(calibration_batches(images, model.record.preprocessing, limit=12))
    with torch.no_grad():
        expected = model(batch)
    got = predictor(batch)
    assert got.shape == (12, 4) and float((got - expected).abs().max()) < 1e-4


def test_the_record_travels_in_json_beside_the_files(exported):
    model, tmp, _, _ = exported
    assert sorted(p.name for p in tmp.glob("m.*")) == ["m.bin", "m.param", "m.record.json"]
    assert json.loads(json.loads((tmp / "m.record.json").read_text())["squeezelab.classes"]) == ["a", "b", "c", "d"]
    predictor = load_predictor(tmp / "m.param")
    assert predictor.classes == ["a", "b", "c", "d"] and predictor.preprocessing == model.record.preprocessing


def test_missing_record_and_int8_are_one_line_errors(exported, tmp_path):
    _, tmp, images, _ = exported
    for name in ("m.param", "m.bin"):
        (tmp_path / name).write_bytes((tmp / name).read_bytes())
    with pytest.raises(SqueezelabError, match="record.json"):
        load_predictor(tmp_path / "m.param")
    with pytest.raises(SqueezelabError, match="ncnn2int8"):
        export_model(small_model(), tmp_path / "n.param", int8=True, calib_data=images)


def test_an_ncnn_export_never_overwrites_an_openvino_ir_s_weights(exported, tmp_path):
    _, tmp, _, _ = exported
    (tmp_path / "m.xml").write_text("<net/>")
    (tmp_path / "m.bin").write_bytes(b"weights")
    with pytest.raises(SqueezelabError, match="weights of"):
        export_model(small_model(), tmp_path / "m.param")
    assert (tmp_path / "m.bin").read_bytes() == b"weights" and not (tmp_path / "m.param").exists()



def test_pnnx_runs_with_sigchld_at_its_default_and_the_handler_comes_back():
    """torch leaves a SIGCHLD handler behind once DataLoader workers ran, and pnnx's exit through
    it crashed a long-lived process (SIGSEGV); the conversion runs with the default handler."""
    import signal

    from squeezelab.export.ncnn import _default_sigchld

    def handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGCHLD, handler)
    try:
        with _default_sigchld():
            assert signal.getsignal(signal.SIGCHLD) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGCHLD) is handler
    finally:
        signal.signal(signal.SIGCHLD, previous)
