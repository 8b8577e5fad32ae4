"""The shared export checks: a missing optional runtime is one line naming the extra."""

import sys

import pytest

import squeezelab
from squeezelab.errors import SqueezelabError
from squeezelab.export.model import export_model


@pytest.mark.parametrize("module, output", [("openvino", "m.xml"), ("pnnx", "m.param")])
def test_a_missing_runtime_names_the_extra(monkeypatch, tmp_path, module, output):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    model = squeezelab.create_model("squeezenet1_1", num_classes=3)
    with pytest.raises(SqueezelabError, match=r"pip install squeezelab\[deploy\]") as error:
        export_model(model, tmp_path / output, input_size=32)
    assert module in str(error.value) and "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
