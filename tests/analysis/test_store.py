"""The result store: recipes name data by contents, workers never outlive the command that started them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from squeezelab.analysis.store import check_recipe
from squeezelab.errors import SqueezelabError

WORKER = '''
import os, pathlib, time

def work(item, threads):
    pathlib.Path({folder!r}, f"{{item}}.pid").write_text(str(os.getpid()))
    time.sleep(300)
    pathlib.Path({folder!r}, f"{{item}}.done").write_text("a result file from an orphan")
'''

PARENT = '''
import sys
sys.path.insert(0, {folder!r})
from worker_module import work
from squeezelab.analysis.store import run_parallel
run_parallel(work, ["a", "b", "c"], jobs=2)
'''


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_killing_the_command_ends_its_workers_before_they_write_results(tmp_path):
    (tmp_path / "worker_module.py").write_text(WORKER.format(folder=str(tmp_path)))
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(folder=str(tmp_path))])
    try:
        assert _wait(lambda: len(list(tmp_path.glob("*.pid"))) == 2, 120), "workers did not start"
        pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait(lambda: not any(_alive(pid) for pid in pids), 15), "workers outlived the killed command"
        assert not list(tmp_path.glob("*.done"))
    finally:
        parent.kill()
        for p in tmp_path.glob("*.pid"):
            try:
                os.kill(int(p.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _cifar_like(root: Path, per_class: int) -> Path:
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                (folder / f"{i}.png").write_bytes(b"")
    return root


def test_a_store_resumes_with_the_same_images_under_another_path_and_refuses_other_images(tmp_path):
    first = _cifar_like(tmp_path / "home-a" / "subset", per_class=3)
    check_recipe(tmp_path / "out", {"data": str(first), "epochs": 10})
    recorded = json.loads((tmp_path / "out" / "recipe.json").read_text())["data"]
    assert recorded == {"folder": "subset", "splits": {"train": {"classes": 2, "images": 6},
                                                       "test": {"classes": 2, "images": 6}}}
    moved = shutil.copytree(first, tmp_path / "home-b" / "subset")
    check_recipe(tmp_path / "out", {"data": str(moved), "epochs": 10})
    (moved / "train" / "cat" / "extra.png").write_bytes(b"")
    with pytest.raises(SqueezelabError, match="different data"):
        check_recipe(tmp_path / "out", {"data": str(moved), "epochs": 10})


def test_a_recipe_recorded_with_a_folder_path_still_resumes_from_a_copy(tmp_path):
    first = _cifar_like(tmp_path / "a" / "subset", per_class=2)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "recipe.json").write_text(json.dumps({"data": str(first), "epochs": 10}))
    check_recipe(tmp_path / "out", {"data": str(shutil.copytree(first, tmp_path / "b" / "subset")), "epochs": 10})
    assert isinstance(json.loads((tmp_path / "out" / "recipe.json").read_text())["data"], dict)  # rewritten
    with pytest.raises(SqueezelabError, match="different epochs"):
        check_recipe(tmp_path / "out", {"data": str(first), "epochs": 20})


def test_a_recipe_recorded_with_a_path_that_is_gone_resumes_from_a_folder_of_the_same_name(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "recipe.json").write_text(json.dumps({"data": "/gone/home/subset", "epochs": 10}))
    moved = _cifar_like(tmp_path / "new-home" / "subset", per_class=2)
    other = _cifar_like(tmp_path / "new-home" / "another", per_class=2)
    with pytest.raises(SqueezelabError, match="different data"):
        check_recipe(tmp_path / "out", {"data": str(other), "epochs": 10})
    check_recipe(tmp_path / "out", {"data": str(moved), "epochs": 10})


def test_a_class_folder_called_train_is_a_class_not_a_split(tmp_path):
    from data.image_builders import write_image
    from squeezelab.data.datasets import data_identity, default_side

    for name in ("train", "bus", "apple"):
        for i in range(3):
            write_image(tmp_path / "flat" / name / f"{i}.png", size=(20, 20), seed=i)
    assert data_identity(str(tmp_path / "flat"))["splits"] == {".": {"classes": 3, "images": 9}}
    assert default_side(str(tmp_path / "flat")) == 20
