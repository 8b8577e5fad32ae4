import json

import numpy as np
import onnx
import pytest
import torch

import squeezelab
from squeezelab.errors import BadFileError, SqueezelabError
from squeezelab.export.onnx import export_onnx, load_onnx, parity

SQUEEZENETS = squeezelab.list_models(family="squeezenet")


@pytest.mark.parametrize("name", SQUEEZENETS)
def test_every_squeezenet_matches_pytorch_within_1e4(name, tmp_path):
    model = squeezelab.create_model(name, num_classes=10, final_relu=False)
    # at 66 the first pool of 1.0 and 1.1 sees an even size, where ceil and floor modes differ
    inputs = torch.randn(3, 3, 66, 66)
    report = export_onnx(model, tmp_path / "m.onnx", dynamic_batch=True, input_size=66, check_inputs=inputs)
    assert report.max_abs_diff < 1e-4
    assert report.checked_on == "3 given input(s)"
    assert parity(model, tmp_path / "m.onnx", torch.randn(5, 3, 66, 66)) < 1e-4


def test_max_pools_keep_ceil_mode(tmp_path):
    export_onnx(squeezelab.create_model("squeezenet1_0", num_classes=10), tmp_path / "m.onnx", input_size=67)
    pools = [n for n in onnx.load(str(tmp_path / "m.onnx")).graph.node if n.op_type == "MaxPool"]
    assert len(pools) == 3
    for node in pools:
        assert {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}.get("ceil_mode") == 1


def test_export_is_in_eval_mode_even_from_a_training_model(tmp_path):
    model = squeezelab.create_model("squeezenet1_1", num_classes=10, final_relu=False).train()
    report = export_onnx(model, tmp_path / "m.onnx", input_size=64)
    assert not model.training and report.max_abs_diff < 1e-4
    loaded = load_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    assert np.array_equal(loaded(x), loaded(x))  # no dropout in the graph
    assert not any(n.op_type == "Dropout" for n in onnx.load(str(tmp_path / "m.onnx")).graph.node)


def test_an_export_failure_is_one_clear_error(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("Unsupported: ONNX export of operator frobnicate\nlong torch details")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(SqueezelabError, match="ONNX export failed: Unsupported: ONNX export of operator frobnicate;"):
        export_onnx(squeezelab.create_model("squeezenet1_1", num_classes=4), tmp_path / "m.onnx", input_size=64)
    assert not (tmp_path / "m.onnx").exists()


def test_opset_is_selectable_and_checked(tmp_path):
    export_onnx(squeezelab.create_model("squeezenet1_1", num_classes=4), tmp_path / "m.onnx", opset=13, input_size=64)
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [13]
    with pytest.raises(SqueezelabError, match="opset 5"):
        export_onnx(squeezelab.create_model("squeezenet1_1", num_classes=4), tmp_path / "x.onnx", opset=5)
    assert not (tmp_path / "x.onnx").exists()


def test_fixed_batch_by_default_and_dynamic_on_request(tmp_path):
    model = squeezelab.create_model("squeezenet1_1", num_classes=4)
    export_onnx(model, tmp_path / "fixed.onnx", input_size=64)
    export_onnx(model, tmp_path / "dyn.onnx", input_size=64, dynamic_batch=True)
    assert load_onnx(tmp_path / "fixed.onnx").fixed_batch == 1
    assert load_onnx(tmp_path / "dyn.onnx").fixed_batch is None
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    assert np.allclose(load_onnx(tmp_path / "fixed.onnx")(x), load_onnx(tmp_path / "dyn.onnx")(x), atol=1e-5)


def test_metadata_records_classes_and_preprocessing(tmp_path):
    model = squeezelab.create_model("squeezenet1_1", num_classes=3)
    model.record = model.record.replace(classes=["cat", "dog", "ünïcode bird"])
    export_onnx(model, tmp_path / "m.onnx", input_size=64)
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(props["squeezelab.classes"]) == list(model.record.classes)
    assert json.loads(props["squeezelab.preprocessing"])["mean"] == list(model.record.preprocessing.mean)
    loaded = load_onnx(tmp_path / "m.onnx")
    assert loaded.classes == list(model.record.classes) and loaded.name == "squeezenet1_1" and loaded.input_size == 64
    assert loaded.num_params == sum(p.numel() for p in model.parameters())
    assert loaded.record.options == {"num_classes": 3}
    written = json.loads(props["squeezelab.provenance"])
    assert loaded.record.provenance.to_dict() == written and written["squeezelab_version"] is not None


def test_caffe_preprocessing_travels_with_the_file(tmp_path):
    from squeezelab.preprocessing import CAFFE_IMAGENET

    model = squeezelab.create_model("squeezenet1_0", num_classes=2)
    model.record = model.record.replace(preprocessing=CAFFE_IMAGENET)
    export_onnx(model, tmp_path / "m.onnx")
    loaded = load_onnx(tmp_path / "m.onnx")
    assert loaded.preprocessing == CAFFE_IMAGENET and loaded.input_size == 227


@pytest.fixture(scope="module")
def good_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "good.onnx"
    export_onnx(squeezelab.create_model("squeezenet1_1", num_classes=4), path, input_size=64)
    return path


def test_untrusted_onnx_files_are_refused_with_one_clear_error(good_onnx, tmp_path):
    data = good_onnx.read_bytes()
    cases = {
        "empty.onnx": b"",
        "text.onnx": b"this is not a model",
        "truncated.onnx": data[: len(data) // 2],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(BadFileError) as info:
            load_onnx(tmp_path / name)
        assert "\n" not in str(info.value)
    with pytest.raises(BadFileError, match="bytes"):
        load_onnx(good_onnx, max_bytes=1000)
    with pytest.raises(SqueezelabError, match="does not exist"):
        load_onnx(tmp_path / "missing.onnx")


def test_wrong_shapes_and_external_data_are_refused(good_onnx, tmp_path):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 8, 8])
    gray = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]))
    onnx.save(gray, str(tmp_path / "gray.onnx"))
    with pytest.raises(BadFileError, match=r"\(N, 3, H, W\)"):
        load_onnx(tmp_path / "gray.onnx")

    proto = onnx.load(str(good_onnx))
    init = proto.graph.initializer[0]
    init.data_location = TensorProto.EXTERNAL
    init.ClearField("raw_data")
    init.external_data.add(key="location", value="/etc/passwd")
    (tmp_path / "ext.onnx").write_bytes(proto.SerializeToString())
    with pytest.raises(BadFileError, match="external data"):
        load_onnx(tmp_path / "ext.onnx")

    proto = onnx.load(str(good_onnx))
    for p in proto.metadata_props:
        if p.key == "squeezelab.classes":
            p.value = json.dumps(["only", "two"])
    (tmp_path / "meta.onnx").write_bytes(proto.SerializeToString())
    with pytest.raises(BadFileError, match="classes"):
        load_onnx(tmp_path / "meta.onnx")


@pytest.mark.slow  # 2-9 s each; AlexNet goes through the fallback exporter and weighs 230 MB
@pytest.mark.parametrize("name", squeezelab.list_models(family="peer"))
def test_every_peer_exports_within_1e4(name, tmp_path):
    model = squeezelab.create_model(name, num_classes=10)
    report = export_onnx(model, tmp_path / "m.onnx", input_size=64, check_inputs=torch.randn(1, 3, 64, 64))
    assert report.max_abs_diff < 1e-4


def test_a_graph_only_the_fallback_exporter_takes_prints_nothing(tmp_path):
    """The TorchScript exporter fails on adaptive pooling to a size that does not divide the input
    (AlexNet's at 32 px); torch then prints the traced graph from C++ to fd 1, past redirect_stdout."""
    import subprocess
    import sys

    script = (
        "import torch\n"
        "from squeezelab.export.onnx import export_onnx\n"
        "model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(6), torch.nn.Flatten(),\n"
        "                            torch.nn.Linear(144, 2))\n"
        "print('before', flush=True)\n"
        f"print(export_onnx(model, {str(tmp_path / 'm.onnx')!r}, input_size=9).max_abs_diff < 1e-4)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["before", "True"] and "graph" not in done.stdout + done.stderr
    opsets = {o.domain: o.version for o in onnx.load(str(tmp_path / "m.onnx")).opset_import}
    assert opsets.get("", opsets.get("ai.onnx")) >= 18  # the fallback exporter made it
