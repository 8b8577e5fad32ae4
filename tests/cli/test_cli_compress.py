import json

import pytest
from helpers import one_line_error

from squeezelab import create_model, load_model


def test_compress_json_report_and_files(cli, trained_run, tmp_path):
    result, _ = trained_run
    out = tmp_path / "m.sqz"
    done = cli("compress", result["checkpoint"], "-o", out, "--bits", "4", "--sparsity", "0.7",
               "--finetune-epochs", "1", "--prune-steps", "2", "--threads", "1", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # accuracy before compression is the checkpoint's own on the split recorded in it
    assert report["acc_before"] == pytest.approx(result["best_val_acc"])
    assert report["compressed_bytes"] == out.stat().st_size
    assert report["ratio"] == pytest.approx(report["original_bytes"] / report["compressed_bytes"], rel=1e-3)
    assert report["ratio"] > 5
    assert (tmp_path / "m_report" / "weights.png").stat().st_size > 1000
    assert json.loads((tmp_path / "m_report" / "report.json").read_text())["compressed_bytes"] == out.stat().st_size

    model = load_model(out)
    assert model.record.classes == ("class0", "class1", "class2")
    assert model.record.notes["data"]["spec"].startswith("synthetic")
    evaluated = cli("eval", out, "--json")  # no --data: the split recorded through the .sqz
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["top1"] == pytest.approx(report["acc_after"], abs=1e-6)


def test_compress_method_kmeans_is_todays_and_is_recorded(cli, trained_run, tmp_path):
    result, _ = trained_run
    reports = {}
    for method in ("kmeans", "gptq"):
        done = cli("compress", result["checkpoint"], "-o", tmp_path / f"{method}.sqz", "--method", method, "--bits", "4",
                   "--finetune-epochs", "0", "--prune-steps", "1", "--threads", "1", "--json")
        assert done.returncode == 0, done.stderr
        reports[method] = json.loads(done.stdout)
        assert reports[method]["config"]["method"] == method
        assert load_model(tmp_path / f"{method}.sqz").record.classes == ("class0", "class1", "class2")
    kept = {m: [layer["density"] for layer in r["layers"] if layer["kind"] == "shared"] for m, r in reports.items()}
    assert kept["gptq"] == pytest.approx(kept["kmeans"], abs=0.02)  # the same policy, other weights


@pytest.mark.parametrize("flag, words", [
    (("--method", "obs"), "method"),
    (("--bits", "12"), "bits"),
    (("--prune-steps", "0"), "prune-steps"),
    (("--centroid-lr", "-1"), "centroid-lr"),
    (("--threads", "0"), "--threads"),
])
def test_compress_bad_settings_are_one_line_exit_2(cli, trained_run, tmp_path, flag, words):
    one_line_error(cli("compress", trained_run[0]["checkpoint"], "-o", tmp_path / "x.sqz", *flag), words)
    assert not (tmp_path / "x.sqz").exists()


def test_compress_of_a_missing_checkpoint_is_one_line_exit_2(cli, tmp_path):
    one_line_error(cli("compress", tmp_path / "missing.pt", "-o", tmp_path / "x.sqz"), "does not exist")
    assert not (tmp_path / "x.sqz").exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "version", "not_sqz"])
def test_eval_of_a_damaged_sqz_is_one_line_exit_2(cli, tmp_path, damage):
    from squeezelab.compress import PruneConfig, QuantConfig, encode, prune, quantize_

    model = create_model("squeezenet_meta", base_e=16, incr_e=16, num_classes=2)
    data = bytearray(encode(quantize_(prune(model, PruneConfig()), QuantConfig(bits=4)))[0])
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
    words = {"truncate": "truncated", "flip": "checksum", "version": "version 7", "not_sqz": "not a .sqz"}[damage]
    one_line_error(cli("eval", path, "--data", "synthetic:n=8,classes=2"), words)
