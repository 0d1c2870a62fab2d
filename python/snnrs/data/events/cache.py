"""An on-disk cache of integrated frames, keyed by everything that decides them.

Building frames reads every event of a dataset; the result is saved once (atomically, as plain
tensors read back with ``weights_only=True``) under ``$SNNRS_CACHE`` (default
``~/.cache/snnrs``) in ``frames/``, and reused by every later run with the same key: the
dataset, the name (relative to the dataset's folder) and the content (a BLAKE2b digest of the
bytes) of every source file, the number of frames, how events are split into them, the frame
size and the cache format. A file replaced by another of the same size with its modification
time restored (``cp -p``, ``rsync -t``, tar) is a new key. The cache is optional: a folder that
cannot hold it (not a folder, not writable, a full disk) gives one :class:`FrameCacheWarning`
naming the folder and why, and the run goes on with the frames in memory.

Hashing costs about 0.05 ms per N-MNIST recording (20 kB), against about 0.15-0.3 ms to read
and integrate it: a few seconds for 70,000 recordings.

Example:
    >>> import os, tempfile, torch
    >>> os.environ["SNNRS_CACHE"] = tempfile.mkdtemp()
    >>> built = []
    >>> def build():
    ...     built.append(1)
    ...     return {"frames": torch.zeros(2, 3, dtype=torch.uint8)}
    >>> key = {"dataset": "toy", "T": 3}
    >>> cached(key, build)["frames"].shape, cached(key, build)["frames"].shape, len(built)
    (torch.Size([2, 3]), torch.Size([2, 3]), 1)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...files import write_atomic

FORMAT = 2
_CHUNK = 1 << 20


class FrameCacheWarning(UserWarning):
    """The frame cache could not be used; the frames were built in memory instead."""


def cache_root() -> Path:
    """``$SNNRS_CACHE``, else ``~/.cache/snnrs``."""
    return Path(os.environ.get("SNNRS_CACHE") or Path.home() / ".cache" / "snnrs")


def file_digest(path: Path) -> str:
    """The BLAKE2b digest (hex) of the bytes of ``path``, read in 1 MiB chunks.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp(), "a.bin")
        >>> _ = path.write_bytes(b"events")
        >>> file_digest(path) == hashlib.blake2b(b"events").hexdigest()
        True
    """
    h = hashlib.blake2b()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(root: Path, files: Iterable[Path]) -> str:
    """A digest of every file's path (relative to ``root``) and content."""
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f"{f.relative_to(root)}\0{file_digest(f)}\n".encode())
    return h.hexdigest()


def _unusable(folder: Path) -> str | None:
    """Why ``folder`` (created if missing) cannot take a cache file, or None if it can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        return _why(err, folder)
    return None


def _why(err: OSError, folder: Path) -> str:
    """The error's reason, with the file it concerns unless that is ``folder``."""
    named = err.filename and Path(os.fsdecode(err.filename)) != folder
    return f"{err.strerror or err}{f' ({err.filename})' if named else ''}"


def _warn(folder: Path, why: str) -> None:
    warnings.warn(f"frame cache {folder} is not usable: {why}; the frames are kept in memory "
                  "for this run only (set SNNRS_CACHE to a writable folder)",
                  FrameCacheWarning, stacklevel=3)


def cached(key: Mapping[str, Any], build: Callable[[], dict[str, Tensor]]) -> dict[str, Tensor]:
    """The tensors ``build()`` returns for ``key``, from the cache when present (a cache file
    that cannot be read is rebuilt); a cache folder that cannot be written is a
    :class:`FrameCacheWarning`, said before building, and the tensors are returned unsaved."""
    text = json.dumps({**key, "format": FORMAT}, sort_keys=True, default=str)
    name = f"{key.get('dataset', 'frames')}-{hashlib.sha256(text.encode()).hexdigest()[:20]}.pt"
    folder = cache_root() / "frames"
    path = folder / name
    try:   # a missing, unreadable or foreign cache file is rebuilt
        saved = torch.load(path, weights_only=True)
        if saved.get("key") == text:
            return saved["tensors"]
    except Exception:
        pass
    problem = _unusable(folder)
    if problem is not None:
        _warn(folder, problem)
        return build()
    tensors = build()
    try:
        write_atomic(path, lambda f: torch.save({"key": text, "tensors": tensors}, f))
    except OSError as err:   # a full disk (DiskFullError) included
        _warn(folder, _why(err, folder))
    return tensors
