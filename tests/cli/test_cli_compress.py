import json

import pytest
import torch

from squeezelab import create_model
from squeezelab.models.config import ModelConfig
from squeezelab.train.checkpoint import save_checkpoint



@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from squeezelab.data import DataConfig, open_dataset

    data = open_dataset(DataConfig("synthetic:n=48,classes=2,size=24"))
    config = ModelConfig("squeezenet1_1", {"num_classes": 2, "stem": "small", "batch_norm": True, "final_relu": False})
    torch.manual_seed(0)
    model = config.build()
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, {
        "model": config.to_dict(), "state_dict": model.state_dict(), "classes": list(data.classes),
        "preprocessing": data.preprocessing.to_dict(), "data": data.config.to_dict(),
    })
    return path


def test_compress_json_report_and_files(cli, checkpoint, tmp_path):
    out = tmp_path / "m.sqz"
    result = cli("compress", str(checkpoint), "-o", str(out), "--bits", "4", "--sparsity", "0.7",
                 "--finetune-epochs", "1", "--prune-steps", "2", "--threads", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("original_bytes", "compressed_bytes", "ratio", "acc_before", "acc_after"):
        assert key in report
    assert 0.0 <= report["acc_before"] <= 1.0 and 0.0 <= report["acc_after"] <= 1.0
    assert report["compressed_bytes"] == out.stat().st_size
    assert report["ratio"] > 5
    assert (tmp_path / "m_report" / "weights.png").stat().st_size > 1000
    assert json.loads((tmp_path / "m_report" / "report.json").read_text())["compressed_bytes"] == out.stat().st_size

    from squeezelab import load_model

    model = load_model(out)
    assert len(model.record.classes) == 2 and model.record.notes["data"]["spec"].startswith("synthetic")
    evaluated = cli("eval", str(out), "--json")  # no --data: the split recorded through the .sqz
    assert evaluated.returncode == 0, evaluated.stderr
    assert abs(json.loads(evaluated.stdout)["top1"] - report["acc_after"]) < 1e-6


def test_compress_errors_are_one_line_exit_2(cli, checkpoint, tmp_path):
    result = cli("compress", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "x.sqz"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "does not exist" in result.stderr
    result = cli("compress", str(checkpoint), "-o", str(tmp_path / "x.sqz"), "--bits", "12")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "bits" in result.stderr
    result = cli("compress", str(checkpoint), "-o", str(tmp_path / "x.sqz"), "--prune-steps", "0")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "prune-steps" in result.stderr
    result = cli("compress", str(checkpoint), "-o", str(tmp_path / "x.sqz"), "--centroid-lr", "-1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "centroid-lr" in result.stderr
    assert not (tmp_path / "x.sqz").exists()


@pytest.mark.parametrize("damage", ["flip", "not_sqz"])  # the library tests cover all four
def test_eval_of_a_damaged_sqz_is_one_line_exit_2(cli, tmp_path, damage):
    from squeezelab.compress import PruneConfig, QuantConfig, encode, prune, quantize_

    model = quantize_(prune(create_model("squeezenet1_1", num_classes=2), PruneConfig()), QuantConfig(bits=4))
    data = bytearray(encode(model)[0])
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "flip":
        data[len(data) // 3] ^= 1
    elif damage == "version":
        data[8] = 7
    else:
        data = bytearray(b"GIF89a" + bytes(200))
    path = tmp_path / "bad model.sqz"
    path.write_bytes(bytes(data))
    result = cli("eval", str(path), "--data", "synthetic:n=8,classes=2")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert {"truncate": "truncated", "flip": "checksum", "version": "version 7", "not_sqz": "not a .sqz"}[damage] in result.stderr

