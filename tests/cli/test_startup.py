"""`squeezelab --help`, `--version` and argument errors answer without importing torch, and the
parsers' defaults are the configs' own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from squeezelab.cli import build_parser, main

HEAVY = ("torch", "torchvision", "numpy", "PIL", "onnx", "onnxruntime", "matplotlib", "uvicorn", "fastapi")

_PROBE = f"""
import contextlib, io, json, sys
from squeezelab.cli import build_parser, main
build_parser()
codes = []
for argv in (["--help"], ["train", "--help"], ["serve", "--help"], ["train", "--epochs", "x"], ["bench", "--nope"],
             ["--version"], ["train", "--epochs", "0"], ["train", "--val-fraction", "2"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            codes.append(main(argv))
        except SystemExit as exc:
            codes.append(exc.code)
print(json.dumps({{"codes": codes, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def test_help_version_and_argument_errors_import_no_heavy_library():
    # a fresh interpreter: this test process has torch loaded already
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["codes"] == [0, 0, 0, 2, 2, 0, 2, 2]
    assert probe["heavy"] == []


def test_version(capsys):
    from squeezelab import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"squeezelab {__version__}"


@pytest.mark.parametrize("command, shown", [
    ("train", ["(default: 512 for images of 64 px or less, 32 for larger ones from pretrained weights, 64 with --scratch;",
               "(default: 0.4 for images of 64 px or less, one chosen from the weights for larger ones from pretrained weights, 0.05 with "
               "--scratch, scaled with the batch",
               "default: sgd for images of 64 px or less, adamw for larger ones from pretrained weights, sgd with --scratch",
               "(default: runs/latest)", "default: squeezenet_cifar for images", "--scratch"]),
    ("serve", ["(default: 8000)", "(default: 127.0.0.1)", "(default: 64)", "(default: 1)"]),
    ("compress", ["(default: 3)", "default 0.92"]),
])
def test_help_shows_defaults(capsys, command, shown):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in shown:
        assert words in text


def test_parser_defaults_are_the_configs_defaults():
    from squeezelab.compress.config import CompressConfig
    from squeezelab.data.config import DataConfig
    from squeezelab.serve.config import ServeLimits
    from squeezelab.train.config import TrainConfig
    from squeezelab.train.recipe import SMALL_IMAGE_RECIPE, recipe_values

    parser = build_parser()
    train = parser.parse_args(["train"])
    assert (train.stuck_steps, train.val_fraction, train.data) == (
        TrainConfig().stuck_steps, DataConfig().val_fraction, DataConfig().spec)
    # the recipe's own values (scratch or fine-tune) fill what the flags leave unset
    assert (train.batch_size, train.lr, train.optimizer) == (None, None, None)
    recipe = recipe_values(TrainConfig.for_run(train.weights, batch_size=train.batch_size, lr=train.lr,
                                               optimizer=train.optimizer), 32, 50_000)
    assert (recipe.batch_size, recipe.lr, recipe.optimizer) == (
        SMALL_IMAGE_RECIPE["batch_size"], SMALL_IMAGE_RECIPE["lr"], SMALL_IMAGE_RECIPE["optimizer"])
    compress = parser.parse_args(["compress", "m.pt", "-o", "m.sqz"])
    assert (compress.sparsity_3x3, compress.bits, compress.prune_steps) == (
        CompressConfig().sparsity_3x3, CompressConfig().bits, CompressConfig().prune_steps)
    assert parser.parse_args(["serve", "m.onnx"]).max_queue == ServeLimits().max_queue


@pytest.mark.parametrize("argv, dest, value", [
    (["bench", "--input-size", "48"], "image_size", 48),
    (["bench", "--image-size", "48"], "image_size", 48),
    (["bench", "--batch", "1,2"], "batch_size", "1,2"),
    (["bench", "--batch-size", "1,2"], "batch_size", "1,2"),
    (["summary", "squeezenet1_1", "--input-size", "64"], "image_size", 64),
    (["export", "m.pt", "-o", "m.onnx", "--input-size", "64"], "image_size", 64),
    (["train", "--input-size", "40"], "image_size", 40),
    (["compare", "--no-train", "--input-size", "96"], "image_size", 96),
])
def test_one_flag_name_per_idea_with_the_old_spelling_kept(argv, dest, value):
    assert getattr(build_parser().parse_args(argv), dest) == value
