"""Each trap a new user fell into, through `squeezelab.cli.main([...])` in this process: what the
command does now, and that a user mistake is one line and exit 2."""

from __future__ import annotations

import json
import shutil
import socket

import pytest
from PIL import Image

from squeezelab.cli import main
from squeezelab.train.checkpoint import load_checkpoint

SHADES = {"cat": (220, 30, 30), "dog": (30, 30, 220)}


def _folder(root, per_class, size=12):
    for name, shade in SHADES.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("RGB", (size + i % 3, size), tuple(max(0, c - 7 * i) for c in shade)).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One finished 1-epoch run on a 20-image folder (16 train / 4 val), trained once."""
    root = tmp_path_factory.mktemp("traps")
    photos = _folder(root / "photos", 10)
    out = root / "run"
    assert main(["train", "--data", str(photos), "--epochs", "1", "--batch-size", "8", "--out", str(out), "--json"]) == 0
    return {"root": root, "photos": photos, "out": out, "ckpt": out / "best.pt"}


def _one_line_exit_2(code, err, words):
    assert code == 2 and words in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_eval_on_a_new_folder_measures_all_of_it(run, tmp_path, capsys):
    new = _folder(tmp_path / "new", 8)  # 16 images the model never saw (a 20% split would take 4)
    capsys.readouterr()
    assert main(["eval", str(run["ckpt"]), "--data", str(new), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 16 and result["images"] == f"all images of {new}"
    assert main(["eval", str(run["ckpt"]), "--data", str(new)]) == 0
    assert f"on 16 images (all images of {new})" in capsys.readouterr().out


def test_eval_on_a_folder_with_a_test_split_uses_only_that(run, tmp_path, capsys):
    _folder(tmp_path / "set" / "train", 8)
    _folder(tmp_path / "set" / "test", 3)
    capsys.readouterr()
    assert main(["eval", str(run["ckpt"]), "--data", str(tmp_path / "set"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 6 and result["data"] == str(tmp_path / "set" / "test")


def test_eval_on_the_runs_own_folder_spelled_differently_keeps_its_split(run, capsys, monkeypatch):
    monkeypatch.chdir(run["root"])
    capsys.readouterr()
    assert main(["eval", str(run["ckpt"]), "--data", "./photos/", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 4 and "validation split" in result["images"]


def test_resume_of_a_finished_run_refuses_or_extends(run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run["out"], out)
    for extra in ([], ["--epochs", "1"]):
        capsys.readouterr()
        code = main(["train", "--out", str(out), "--resume", *extra])
        _one_line_exit_2(code, capsys.readouterr().err, "--epochs")
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["epochs"] == 2
    last = load_checkpoint(out / "last.pt")
    assert last["epoch"] == 2 and last["train"]["epochs"] == 2


def test_a_batch_larger_than_the_data_is_reduced_with_one_warning(run, tmp_path, capsys):
    out = tmp_path / "big"
    capsys.readouterr()
    assert main(["train", "--data", str(run["photos"]), "--epochs", "1", "--batch-size", "100000", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("squeezelab: warning:")]
    assert warnings == ["squeezelab: warning: --batch-size 100000 is larger than the 16 training images; using 16 "
                        "(one step an epoch: a smaller --batch-size takes more steps)"]
    assert load_checkpoint(out / "last.pt")["train"]["batch_size"] == 16
    # not a terminal: one line per epoch on stderr, the result alone on stdout
    assert [line for line in captured.err.splitlines() if line.startswith("epoch")][0].startswith("epoch   1/1")
    assert captured.out.startswith("best val accuracy") and "epoch   1/1" not in captured.out


def test_best_pt_leaves_the_optimizer_state_to_last_pt(run):
    best, last = load_checkpoint(run["out"] / "best.pt"), load_checkpoint(run["out"] / "last.pt")
    assert "optimizer" not in best and "scheduler" not in best
    assert "optimizer" in last and "scheduler" in last
    assert (run["out"] / "best.pt").stat().st_size < (run["out"] / "last.pt").stat().st_size


def test_bench_of_a_checkpoint_runs_at_its_own_size_under_its_path(run, capsys):
    capsys.readouterr()
    assert main(["bench", str(run["ckpt"]), "--backends", "eager", "--batch", "1", "--min-seconds", "0.01",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    trained_at = load_checkpoint(run["ckpt"])["preprocessing"]["crop"]
    assert trained_at == 16  # 12-14 px photos train at 16 px, not at ImageNet's 224
    assert [(r["model"], r["input_size"], r["batch"]) for r in rows] == [(str(run["ckpt"]), trained_at, 1)]


def test_report_writes_into_the_run_folder(run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(run["out"])]) == 0
    assert (run["out"] / "report.html").is_file() and not (tmp_path / "report.html").exists()
    assert capsys.readouterr().out.strip() == f"wrote {run['out'] / 'report.html'}"


def test_serve_on_a_busy_port_is_one_line_before_serving(run, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = main(["serve", str(run["ckpt"]), "--port", str(port)])
    captured = capsys.readouterr()
    _one_line_exit_2(code, captured.err, f"port {port} on 127.0.0.1 is already in use")
    assert "serving" not in captured.out


@pytest.mark.parametrize("flag", ["--max-batch", "--workers"])
def test_serve_with_no_batch_or_no_workers_is_one_line(run, capsys, flag):
    code = main(["serve", str(run["ckpt"]), "--port", "0", flag, "0"])
    _one_line_exit_2(code, capsys.readouterr().err, f"{flag} must be at least 1, got 0")


def test_compress_of_a_sqz_asks_for_the_checkpoint(tmp_path, capsys):
    sqz = tmp_path / "m.sqz"
    sqz.write_bytes(b"\x89SQZ")
    code = main(["compress", str(sqz), "-o", str(tmp_path / "again.sqz")])
    err = capsys.readouterr().err
    _one_line_exit_2(code, err, "compress needs a .pt checkpoint")
    assert "truncated" not in err


def test_predict_on_a_folder_predicts_every_image_in_order(run, tmp_path, capsys):
    folder = tmp_path / "shots"
    for path in ("b.png", "a.png", "sub/c.png", ".hidden.png"):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (14, 12), (200, 40, 40)).save(folder / path)
    (folder / "notes.txt").write_text("not an image")
    capsys.readouterr()
    assert main(["predict", str(run["ckpt"]), str(folder), "--topk", "2", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in results] == [str(folder / "a.png"), str(folder / "b.png"), str(folder / "sub" / "c.png")]
    top = results[0]["predictions"][0]
    assert top["label"] == top["class"] and top["label"] in SHADES


def test_predict_with_nothing_to_predict_is_one_line(run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["predict", str(run["ckpt"]), str(tmp_path / "empty")])
    _one_line_exit_2(code, capsys.readouterr().err, "no image files")


def test_predict_writes_csv_and_jsonl(run, tmp_path, capsys):
    csv_path, jsonl_path = tmp_path / "out.csv", tmp_path / "out.jsonl"
    capsys.readouterr()
    assert main(["predict", str(run["ckpt"]), str(run["photos"] / "cat"), "--topk", "2", "--csv", str(csv_path),
                 "--jsonl", str(jsonl_path)]) == 0
    assert f"wrote {csv_path} and {jsonl_path} (10 images)" in capsys.readouterr().out
    rows = csv_path.read_text().splitlines()
    assert rows[0] == "path,label,probability,label_2,probability_2" and len(rows) == 11
    assert rows[1].startswith(str(run["photos"] / "cat" / "0.png") + ",")
    lines = [json.loads(line) for line in jsonl_path.read_text().splitlines()]
    assert len(lines) == 10 and lines[0]["label"] == lines[0]["predictions"][0]["label"]
    assert {row.split(",")[1] for row in rows[1:]} == {line["label"] for line in lines}


def test_eval_on_a_folder_of_one_class_measures_it(run, tmp_path, capsys):
    only_cats = tmp_path / "only_cats" / "cat"
    only_cats.mkdir(parents=True)
    for path in sorted((run["photos"] / "cat").iterdir())[:4]:
        shutil.copy(path, only_cats / path.name)
    assert main(["eval", str(run["ckpt"]), "--data", str(tmp_path / "only_cats"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 4 and result["classes"] == ["cat"]


def test_export_onto_a_folder_is_one_line(run, tmp_path, capsys):
    (tmp_path / "photos.onnx").mkdir()
    code = main(["export", str(run["ckpt"]), "-o", str(tmp_path / "photos.onnx")])
    _one_line_exit_2(code, capsys.readouterr().err, "is a folder")


def test_training_again_into_a_finished_run_warns_that_it_is_replaced(run, tmp_path, capsys):
    out = tmp_path / "again"
    args = ["train", "--data", str(run["photos"]), "--epochs", "1", "--batch-size", "8", "--out", str(out), "--json"]
    assert main(args) == 0
    assert "holds a run already" not in capsys.readouterr().err
    assert main(args) == 0
    assert "holds a run already; it is replaced" in capsys.readouterr().err
    bad = ["train", "--data", str(tmp_path / "missing"), "--out", str(out)]  # fails before it replaces anything
    _one_line_exit_2(main(bad), capsys.readouterr().err, "not found")


def test_a_reader_that_goes_away_is_no_error(monkeypatch, capsys):
    import squeezelab.cli.models as models

    def closed_pipe(args):
        raise BrokenPipeError

    monkeypatch.setattr(models, "run_models", closed_pipe)  # `squeezelab models | head -1`
    assert main(["models"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_a_small_training_set_keeps_its_last_ragged_batch():
    from squeezelab.data import DataConfig, open_dataset

    data = open_dataset(DataConfig("synthetic:n=120,classes=2,size=16"))  # 96 training images
    sizes = [len(y) for _, y in data.batches("train", 64)]
    assert sizes == [64, 32]
    big = open_dataset(DataConfig("synthetic:n=400,classes=2,size=16"))  # 320: five batches of 64
    assert [len(y) for _, y in big.batches("train", 60)] == [60] * 5  # the ragged 20 dropped
