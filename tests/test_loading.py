"""Every model file opens through one registry into one predictor interface."""

import pytest
import torch

from squeezelab import create_model, load_model
from squeezelab.compress import save
from squeezelab.errors import SqueezelabError
from squeezelab.evaluate import evaluate
from squeezelab.export.onnx import export_onnx
from squeezelab.loading import load_predictor
from squeezelab.models.record import package_version
from squeezelab.train.checkpoint import record_entries, save_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("files")
    model = create_model("squeezenet1_1", num_classes=3, final_relu=False).eval()
    model.record = model.record.replace(classes=["cat", "dog", "bird"])
    save_checkpoint(root / "m.pt", {**record_entries(model.record), "state_dict": model.state_dict()})
    save(model, root / "m.sqz")
    export_onnx(model, root / "m.onnx", input_size=64, dynamic_batch=True)
    return model, root


@pytest.mark.parametrize("name", ["m.pt", "m.sqz", "m.onnx"])
def test_every_format_opens_into_the_same_predictor(files, name):
    model, root = files
    predictor = load_predictor(root / name)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(predictor.predict_logits(x), model(x), atol=1e-4, rtol=1e-4)
    assert predictor.record.classes == ("cat", "dog", "bird")
    assert predictor.record.name == "squeezenet1_1"
    assert predictor.record.provenance.squeezelab_version == package_version()
    assert predictor.kind == ("onnx" if name.endswith(".onnx") else "pytorch")


def test_evaluation_loops_run_on_an_onnx_predictor(files):
    model, root = files
    x, y = torch.randn(6, 3, 64, 64), torch.tensor([0, 1, 2, 0, 1, 2])
    expected = evaluate(model, [(x, y)], device="cpu")
    got = evaluate(load_predictor(root / "m.onnx"), [(x, y)], device="cpu")
    assert got.top1 == expected.top1 and got.classes == ["cat", "dog", "bird"]
    assert got.loss == pytest.approx(expected.loss, abs=1e-4)


def test_load_model_sends_onnx_to_load_predictor(files):
    _, root = files
    with pytest.raises(SqueezelabError, match="load_predictor"):
        load_model(root / "m.onnx")
    (root / "m.xyz").write_bytes(b"x")
    with pytest.raises(SqueezelabError, match="unknown model file type"):
        load_predictor(root / "m.xyz")


def test_the_registry_imports_no_format_and_loading_fills_it():
    """Formats register themselves into model_files; loading imports them all (docs/ARCHITECTURE.md)."""
    import ast
    from pathlib import Path

    import squeezelab.loading as loading
    import squeezelab.model_files as model_files

    tree = ast.parse(Path(model_files.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {m for m in imported if m.startswith(("squeezelab.export", "squeezelab.train", "squeezelab.compress"))}
    assert {".pt", ".sqz"} <= set(model_files.MODEL_LOADERS)
    assert {".onnx", ".xml", ".param", ".pte", ".tflite"} <= set(model_files.PREDICTOR_LOADERS)
    assert not hasattr(loading, "LOADERS")  # the old alias is gone; MODEL_LOADERS is the one name
