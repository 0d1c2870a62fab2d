"""An on-disk cache of integrated frames, keyed by everything that decides them.

Building frames reads every event of a dataset; the result is saved once (atomically, as plain
tensors read back with ``weights_only=True``) under ``$SNNRS_CACHE`` (default
``~/.cache/snnrs``) in ``frames/``, and reused by every later run with the same key: the
dataset, its folder, the name, size and modification time of every source file, the number of
frames, how events are split into them, the frame size and the cache format.

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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...files import write_atomic

FORMAT = 1


def cache_root() -> Path:
    """``$SNNRS_CACHE``, else ``~/.cache/snnrs``."""
    return Path(os.environ.get("SNNRS_CACHE") or Path.home() / ".cache" / "snnrs")


def fingerprint(root: Path, files: Iterable[Path]) -> str:
    """A digest of every file's path (relative to ``root``), size and modification time."""
    h = hashlib.sha256()
    for f in sorted(files):
        st = f.stat()
        h.update(f"{f.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cached(key: Mapping[str, Any], build: Callable[[], dict[str, Tensor]]) -> dict[str, Tensor]:
    """The tensors ``build()`` returns for ``key``, from the cache when present (a cache file
    that cannot be read is rebuilt)."""
    text = json.dumps({**key, "format": FORMAT}, sort_keys=True, default=str)
    name = f"{key.get('dataset', 'frames')}-{hashlib.sha256(text.encode()).hexdigest()[:20]}.pt"
    path = cache_root() / "frames" / name
    if path.is_file():
        try:
            saved = torch.load(path, weights_only=True)
            if saved.get("key") == text:
                return saved["tensors"]
        except Exception:
            pass
    tensors = build()
    write_atomic(path, lambda f: torch.save({"key": text, "tensors": tensors}, f))
    return tensors
