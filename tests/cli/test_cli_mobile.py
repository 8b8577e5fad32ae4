"""`squeezelab export --format executorch|litert|coreml`, then `predict` and `bench` on the file,
through the command's own entry point."""

import dataclasses
import json

import numpy as np
import pytest
from helpers import one_line_error
from PIL import Image

import squeezelab
from squeezelab.compress import save
from squeezelab.export.mobile import INSTALL, import_mobile
from squeezelab.errors import SqueezelabError


@pytest.fixture(scope="module")
def sqz(tmp_path_factory):
    """A tiny 3-class CIFAR SqueezeNet at 32 px as a .sqz file, and a folder of photos."""
    tmp = tmp_path_factory.mktemp("mobile")
    model = squeezelab.create_model("squeezenet_cifar", num_classes=3)
    preprocessing = dataclasses.replace(model.record.preprocessing, resize=36, crop=32)
    model.record = model.record.replace(preprocessing=preprocessing, classes=("a", "b", "c"))
    save(model.eval(), tmp / "model.sqz")
    images = tmp / "images"
    rng = np.random.default_rng(0)
    for i in range(6):
        (images / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(images / f"c{i % 3}" / f"{i}.png")
    return tmp / "model.sqz", images


def test_executorch_export_then_predict_and_bench_run_the_pte(cli, sqz, tmp_path):
    pytest.importorskip("executorch.runtime", reason="ExecuTorch is not installed: pip install -e '.[mobile]'")
    path, images = sqz
    out = tmp_path / "m.pte"
    done = cli("export", path, "-o", out, "--calib-data", images)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out} (executorch fp32" in done.stdout and "record in" in done.stdout and "6 given image(s)" in done.stdout
    assert float(done.stdout.split("max abs logit diff ")[1].split(",")[0]) < 1e-4
    predicted = cli("predict", out, images / "c0" / "0.png", "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)[0]["predictions"][0]["label"] in ("a", "b", "c")
    bench = cli("bench", out, "--batch-size", "1", "--min-seconds", "0.05", "--json")
    assert bench.returncode == 0, bench.stderr
    (row,) = json.loads(bench.stdout)
    assert row["backend"] == "executorch" and row["ms_median"] > 0 and row["size_bytes"] == out.stat().st_size


def test_mobile_mistakes_are_one_line(cli, sqz, tmp_path):
    path, images = sqz
    one_line_error(cli("export", path, "-o", tmp_path / "m.pte", "--int8"), "--calib-data")
    one_line_error(cli("export", path, "-o", tmp_path / "m.mlpackage", "--int8", "--calib-data", images),
                   "executorch or litert")
    with pytest.raises(SqueezelabError, match=r"pip install -e '\.\[mobile\]'") as raised:
        import_mobile("squeezelab_no_such_runtime", "a phone export")
    assert str(raised.value).endswith(INSTALL) and len(str(raised.value).splitlines()) == 1


def test_help_says_core_ml_cannot_run_on_linux(cli):
    done = cli("export", "--help")
    assert "coreml" in done.stdout and "cannot be run on Linux" in " ".join(done.stdout.split())
