"""Model files for the service tests."""

from __future__ import annotations

import pytest
from serve_helpers import CLASSES, tiny_model

import squeezelab
from squeezelab.train.checkpoint import save_checkpoint


@pytest.fixture(scope="session")
def checkpoint_file(tmp_path_factory):
    model = tiny_model()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, {"model": {"name": "squeezenet1_1", "options": {"num_classes": 10, "final_relu": False}},
                           "state_dict": model.state_dict(), "classes": CLASSES,
                           "preprocessing": model.record.preprocessing.to_dict()})
    return path


@pytest.fixture(scope="session")
def onnx_file(tmp_path_factory, checkpoint_file):
    from squeezelab.export.onnx import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(squeezelab.load_model(checkpoint_file), path, dynamic_batch=True)
    return path
