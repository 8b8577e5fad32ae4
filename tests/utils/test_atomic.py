import os
import stat

import pytest

from squeezelab.utils.atomic import atomic_open, atomic_write_text


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


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current
