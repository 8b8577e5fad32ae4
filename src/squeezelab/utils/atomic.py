"""Write files so that a crash or a kill never leaves a half-written one behind.

Data goes to a temporary file in the same folder, is flushed and fsynced, then renamed over the
target: on POSIX a rename is atomic, so readers see the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Iterator

from squeezelab.errors import SqueezelabError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file that replaces `path` only if the block finishes without error.

    >>> with atomic_open("/tmp/example.txt", "w") as f:
    ...     _ = f.write("hello")
    """
    path = Path(path)
    if path.is_dir():
        raise SqueezelabError(f"cannot write {path}: it is a folder; name a file (e.g. {path / 'out'}{path.suffix})")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a written file should read like any other
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that writers killed mid-write (SIGKILL, power loss) left in `folder`.

    A killed writer cannot clean up after itself; the next run that owns the folder (a training
    run's --out, before it writes anything) does. Only names this module makes are touched.
    Returns the removed paths.
    """
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        if _TEMPORARY_NAME.fullmatch(tmp.name) and tmp.is_file():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


_TEMPORARY_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # mkstemp(prefix=".<name>.", suffix=".tmp")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)
