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
import errno
import os
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

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


class DiskFullError(OSError):
    """No space was left to write a file; the file's previous version, if any, is intact."""

    def __str__(self) -> str:
        return str(self.strerror)


def _disk_full(e: BaseException) -> bool:
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    # torch.save reports a failed write from its zip writer as a RuntimeError
    return isinstance(e, RuntimeError) and any(
        s in str(e) for s in ("unexpected pos", "No space left", "file write failed"))


#: The ending of every temporary file snnrs writes (``.<target>.<random>.snnrs.tmp``), so that
#: it can tell its own leftovers from anyone else's files.
TEMP_SUFFIX = ".snnrs.tmp"
_TEMPORARY = re.compile(r"\..+\.[^./]+" + re.escape(TEMP_SUFFIX), re.DOTALL)


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Calls ``write(f)`` on a temporary binary file beside ``path``, then renames it over
    ``path``. If ``write`` raises, the temporary file is removed and ``path`` is untouched; a
    full disk raises :class:`DiskFullError` saying so."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; the usual new-file mode
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if _disk_full(e):
            kept = f"the previous {path.name} is intact" if path.exists() else "nothing written"
            raise DiskFullError(errno.ENOSPC, f"no space left on the disk to write {path} ("
                                f"{kept}); free some space, then resume") from None
        raise
    _fsync_dir(path.parent)


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named as :func:`write_atomic` names its temporary files:
    ``.<target>.<random>`` followed by :data:`TEMP_SUFFIX`. No other file is ever removed as a
    temporary.

    Example:
        >>> is_temporary(".student.pt.k2x9a_1q.snnrs.tmp"), is_temporary(".notes.tmp")
        (True, False)
    """
    return _TEMPORARY.fullmatch(Path(path).name) is not None


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Deletes the temporary files that writes killed mid-way left in ``directory`` itself (not
    in its subfolders), those named by :func:`write_atomic` only (:func:`is_temporary`); call it
    only while holding the folder's :class:`FolderLock`. Returns the files removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.iterdir()
             if is_temporary(p) and p.is_file() and not p.is_symlink()]
    for p in stale:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return stale


class FolderLock:
    """An advisory lock on a run folder: one snnrs run at a time. The operating system releases
    it when the process ends, however it ends. Where ``fcntl`` is missing (Windows) it only
    records the owner.

    Its file, :attr:`NAME`, stays after a run and marks the folder as an snnrs run folder
    (:func:`is_run_folder`); :meth:`abandon` takes back a start that wrote nothing.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with FolderLock(folder):
        ...     try:
        ...         FolderLock(folder).acquire()
        ...     except FolderBusyError as e:
        ...         print("busy:", "another snnrs run" in str(e))
        busy: True
    """

    NAME = ".snnrs.lock"

    def __init__(self, directory: str | os.PathLike) -> None:
        self.path = Path(directory) / self.NAME
        self._file: BinaryIO | None = None
        self._created = False  # whether acquire made the lock file
        self._folders: list[Path] = []  # the folders acquire made, outermost first

    def acquire(self) -> FolderLock:
        folder = self.path.parent
        self._folders = [p for p in (*reversed(folder.absolute().parents), folder.absolute())
                         if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            f, self._created = _open_or_create(self.path)
            try:
                if fcntl is not None:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                owner = f.read().decode(errors="replace").strip() or "unknown"
                f.close()
                raise FolderBusyError(f"{folder} is in use by another snnrs run (process "
                                      f"{owner}); wait for it or choose another --out") from None
            if _still_at(f, self.path):
                break
            f.close()  # its holder abandoned it between our open and our lock: open the new one
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()).encode())
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the lock
            self._file = None

    def abandon(self) -> None:
        """Releases the lock and removes what :meth:`acquire` created, the lock file and the
        folders it made (those still empty): for a run refused before it wrote anything."""
        if self._file is not None and self._created:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # while holding it: no other run can be using it
        self.release()
        for folder in reversed(self._folders):
            try:
                folder.rmdir()
            except OSError:  # not empty: someone else's now
                break
        self._folders = []

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _open_or_create(path: Path) -> tuple[BinaryIO, bool]:
    """``path`` opened for reading and writing, and whether this call created it."""
    try:
        return os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), "r+b"), True
    except FileExistsError:
        try:
            return os.fdopen(os.open(path, os.O_RDWR), "r+b"), False
        except FileNotFoundError:  # removed in between
            return _open_or_create(path)


def _still_at(f: BinaryIO, path: Path) -> bool:
    """Whether the open file ``f`` is still the one at ``path``."""
    try:
        return os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def is_run_folder(directory: str | os.PathLike) -> bool:
    """Whether an snnrs run has taken ``directory``: it holds the :class:`FolderLock` file.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> before = is_run_folder(folder)
        >>> FolderLock(folder).acquire().release()
        >>> before, is_run_folder(folder)
        (False, True)
    """
    return (Path(directory) / FolderLock.NAME).is_file()


class FolderBusyError(ValueError):
    """Another run holds the folder's :class:`FolderLock`."""


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
