"""Recycles the large output buffers of the CPU ops once nothing references them.

glibc serves allocations of 32 MiB and more with a fresh ``mmap`` and unmaps them when they die,
so an op that allocates such ``[T, N]`` outputs every step pays a page fault per 4 KiB on first
touch, which on virtual machines can cost more than the kernel. The pool keeps recently
allocated buffers of that size and hands one out again only when its storage has no user left:
no tensor, view, autograd saved tensor or numpy array shares it. Smaller buffers are left to
glibc: it raises its mmap threshold (up to 32 MiB) after freeing a large block and then reuses
heap memory for that size, and holding such blocks back would keep it from adapting for the
rest of the model's tensors. Bounded by :func:`set_cache_limit` (0 disables it);
:func:`empty_cache` lets go of what it holds.
"""

from __future__ import annotations

import functools
import numbers
import threading

import torch
from torch import Tensor

_MIN_BYTES = 32 << 20  # glibc's largest mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX)
_lock = threading.Lock()
_pool: list[torch.UntypedStorage] = []
_limit = 1 << 30


def _use_count(storage: torch.UntypedStorage) -> int:
    return torch._C._storage_Use_Count(storage._cdata)


@functools.cache
def _free_use_count() -> int | None:
    """The use count of a storage only the pool holds (None: this torch cannot tell); probed on
    first use, not at import."""
    if not hasattr(torch._C, "_storage_Use_Count"):
        return None
    storage = torch.UntypedStorage(16)
    free = _use_count(storage)
    held = torch.empty(0, dtype=torch.uint8).set_(storage)
    return free if _use_count(storage) == free + 1 and held.numel() == 16 else None


def set_cache_limit(nbytes: int) -> None:
    """Caps the bytes of free output buffers snnrs keeps for reuse (default 1 GiB; 0: none).

    ``nbytes`` is an integer >= 0 (not a bool or float: ``nan`` or ``inf`` would mean no cap).

    Example:
        >>> set_cache_limit(512 << 20)                    # keep at most 512 MiB
        >>> set_cache_limit(1 << 30)                      # the default
    """
    global _limit
    # Checked here, not with snnrs._contract's helpers: this layer sits below it.
    if isinstance(nbytes, bool) or not isinstance(nbytes, numbers.Integral):
        raise TypeError(f"set_cache_limit: nbytes must be an integer number of bytes, got "
                        f"{nbytes!r} ({type(nbytes).__name__})")
    if nbytes < 0:
        raise ValueError(f"set_cache_limit: nbytes must be >= 0 (0 keeps no buffers), got "
                         f"{nbytes}")
    nbytes = int(nbytes)
    with _lock:
        _limit = nbytes
        _trim()


def empty_cache() -> None:
    """Lets go of every free buffer snnrs keeps (buffers still in use are unaffected)."""
    with _lock:
        _pool.clear()


def _trim() -> None:
    total = sum(s.nbytes() for s in _pool)
    while _pool and total > _limit:
        total -= _pool.pop(0).nbytes()


def _view(storage: torch.UntypedStorage, shape: torch.Size, dtype: torch.dtype) -> Tensor:
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape)


def empty(shape: torch.Size, dtype: torch.dtype) -> Tensor:
    """An uninitialised contiguous CPU tensor, on a recycled buffer when one of that size is free.

    Example:
        >>> empty(torch.Size([4, 3]), torch.float32).shape
        torch.Size([4, 3])
    """
    nbytes = shape.numel() * dtype.itemsize
    if nbytes < _MIN_BYTES or nbytes > _limit or (free := _free_use_count()) is None:
        return torch.empty(shape, dtype=dtype)
    with _lock:
        for i, storage in enumerate(_pool):
            if storage.nbytes() == nbytes and _use_count(storage) == free:
                _pool.append(_pool.pop(i))  # most recently used last
                return _view(storage, shape, dtype)
        t = torch.empty(shape, dtype=dtype)
        _pool.append(t.untyped_storage())
        _trim()
        return t
