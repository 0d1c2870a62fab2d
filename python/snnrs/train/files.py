"""Atomic file writes: a reader (or a run killed mid-write) sees the old file or the new one,
never a partial one.

The content goes to a temporary file in the target's directory, is flushed and fsynced, and
replaces the target with :func:`os.replace` (atomic on POSIX and Windows); the directory is then
fsynced so the rename itself survives a power cut.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> write_text(path, "hello\\n")
    >>> path.read_text()
    'hello\\n'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask now (it may change while a job runs): read from ``/proc`` on Linux,
    elsewhere by setting and restoring it, under a lock.

    Example:
        >>> current_umask() == current_umask() and 0 <= current_umask() <= 0o777
        True
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0)
        os.umask(mask)
        return mask


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Calls ``write(f)`` on a temporary binary file beside ``path``, then renames it over
    ``path``. If ``write`` raises, the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; the usual new-file mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    write_atomic(path, lambda f: f.write(text.encode()))
