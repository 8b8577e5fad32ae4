import os
import stat
import subprocess
import sys

import pytest

from squeezelab.utils.atomic import atomic_open, atomic_write_text, remove_stale_temporaries


def test_written_file_has_normal_permissions(tmp_path):
    path = tmp_path / "report.html"
    atomic_write_text(path, "<p>hi</p>")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    assert path.read_text() == "<p>hi</p>"


def test_an_error_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "last.pt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(path, "w") as handle:
            handle.write("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_writer_killed_mid_write_leaves_a_temporary_the_next_owner_removes(tmp_path):
    path = tmp_path / "last.pt"
    path.write_text("old")
    (tmp_path / ".notes.tmp").write_text("not ours")
    killed = subprocess.run([sys.executable, "-c", (
        "import os, signal, sys\n"
        "from squeezelab.utils.atomic import atomic_open\n"
        "with atomic_open(sys.argv[1], 'w') as f:\n"
        "    f.write('half'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"), str(path)])
    assert killed.returncode == -9
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".last.pt.")]
    assert len(left) == 1 and path.read_text() == "old"
    assert remove_stale_temporaries(tmp_path) == left
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.tmp", "last.pt"]


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current
